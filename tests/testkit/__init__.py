"""Test-side helpers shared by every test folder.

Each folder once carried its own copy of "start a real nnserve on a free loopback port, poll until it is
up, stop it by PID", of a Prometheus launcher and of a digit-image renderer; the copies drifted apart in
timeouts, failure messages and clean-up. These modules are the one version:

- `processes`: free ports, log-file subprocesses, readiness polling that surfaces the log, SIGTERM-then-kill.
- `server`: `python -m service serve` (or any command that serves nnserve) as a context manager.
- `prometheus`: a real Prometheus binary scraping a test server.
- `digits`: 8x8 digits rendered as the image files a user would upload.
"""

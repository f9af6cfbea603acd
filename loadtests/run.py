"""Headless load test with pass/fail limits: `python -m loadtests.run --host http://127.0.0.1:8000`.

Runs locust without its web UI for a fixed time, writes `<out>/locust_stats.csv` (plus failures and
history CSVs), `<out>/locust_final.json`, `<out>/report.html` and locust's own log `<out>/locust.log`,
prints a per-endpoint summary and exits non-zero when a limit breaks, so CI and release scripts can
gate on it. The run is bounded: locust stops itself after `--duration`, and this runner kills it if it
overstays that by more than a grace period.

Exit codes: 0 limits held; 1 a limit broke (or nothing was requested); 2 locust failed to run;
3 locust did not stop in time.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

from loadtests.stats import check_limits, format_table, read_final_stats

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STATS_PREFIX = "locust"
FINAL_STATS = "locust_final"
"""Locust appends `.json` to this `--json-file` name."""
START_GRACE_S = 60.0
"""Time allowed beyond the run itself for locust to import, spawn and write its reports."""
EXIT_OK, EXIT_LIMITS, EXIT_LOCUST_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `2m` or `1h`."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"duration {text!r} is not like 30, 30s, 5m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def locust_command(args: argparse.Namespace) -> list[str]:
    out: Path = args.out
    command = [
        sys.executable, "-m", "locust",
        "--locustfile", str(args.locustfile),
        "--headless", "--only-summary",
        "--host", args.host,
        "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate or args.users),
        "--run-time", f"{math.ceil(args.duration)}s",
        "--stop-timeout", f"{math.ceil(args.stop_timeout)}",
        "--csv", str(out / STATS_PREFIX),
        "--html", str(out / "report.html"),
        "--json-file", str(out / FINAL_STATS),
        "--exit-code-on-error", "0",
        "--loglevel", args.loglevel,
    ]  # fmt: skip
    if args.tags:
        command += ["--tags", *args.tags]
    if args.exclude_tags:
        command += ["--exclude-tags", *args.exclude_tags]
    return command + list(args.classes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run",
        description="Run the nnserve locust scenarios headless and check error rate and p95 latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("classes", nargs="*", help="user classes to run (default: all in the locustfile)")
    parser.add_argument("--host", default="http://127.0.0.1:8000", help="base URL of the server")
    parser.add_argument("--users", type=int, default=10, help="concurrent simulated users")
    parser.add_argument(
        "--spawn-rate", type=float, default=None, help="users started per second (default: all at once)"
    )
    parser.add_argument("--duration", type=parse_duration, default=30.0, help="run time: 30, 30s, 5m, 1h")
    parser.add_argument("--tags", nargs="+", default=[], help="only tasks with one of these tags")
    parser.add_argument("--exclude-tags", nargs="+", default=[], help="skip tasks with these tags")
    parser.add_argument("--out", type=Path, default=Path("loadtest-report"), help="folder for CSV and HTML")
    parser.add_argument("--max-error-rate", type=float, default=0.01, help="largest allowed failed fraction")
    parser.add_argument("--max-p95-ms", type=float, default=None, help="largest allowed p95 per endpoint")
    parser.add_argument("--max-ttft-p95-ms", type=float, default=None, help="largest allowed p95 time to first token")
    parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds users get to finish at the end")
    parser.add_argument("--locustfile", type=Path, default=LOCUSTFILE, help="scenarios to run")
    parser.add_argument("--loglevel", default="WARNING", help="locust's log level")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    timeout = args.duration + args.stop_timeout + START_GRACE_S
    log_path = args.out / "locust.log"
    with log_path.open("wb") as log:
        try:
            completed = subprocess.run(locust_command(args), stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"locust did not stop within {timeout:.0f} s; killed (log: {log_path})", file=sys.stderr)
            return EXIT_TIMEOUT
    stats_file = args.out / f"{FINAL_STATS}.json"
    if completed.returncode != 0 or not stats_file.exists():
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        print(
            f"locust failed (exit code {completed.returncode}); no verdict. Log tail:\n{tail}",
            file=sys.stderr,
        )
        return EXIT_LOCUST_FAILED
    rows = read_final_stats(stats_file)
    print(format_table(rows))
    print(f"\nreports in {args.out}: report.html, {STATS_PREFIX}_stats.csv, {stats_file.name}, {log_path.name}")
    problems = check_limits(rows, args.max_error_rate, args.max_p95_ms, args.max_ttft_p95_ms)
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("PASS: all limits held")
    return EXIT_LIMITS if problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""The root of the test tree: its presence makes pytest (default `prepend` import mode) put `tests/` on
`sys.path`, so every test folder can import the shared helpers in `testkit/` whether or not the folder is
a package. Folders such as tests/service and tests/training deliberately have no `__init__.py`: as
packages they would shadow the real `service` and `training` packages."""

import os

os.environ["NNSERVE_GRPC_PORT"] = "0"
"""No test server listens for gRPC unless its test asks (tests/grpc does): the default port, 8001, is one
port for the whole machine, and tests (and their runs side by side) would fight over it."""

"""`python -m service ...` is `nnserve ...`."""

import sys

from service.cli import main

sys.exit(main())

"""`python -m training` is `nnserve-train`."""

from training.cli import main

raise SystemExit(main())

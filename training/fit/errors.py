"""The one error bad data raises: refused before training starts, with the file, line or column named."""

from __future__ import annotations


class DataError(ValueError):
    """The data cannot be trained on; the message says where (file, line, column) and what to do.

    Raised before any model is built, so the repository is never touched by a run that fails here.
    """


def first_few(items: list[str], limit: int = 5) -> str:
    """`a; b; c (and 7 more)`: error messages list a few offenders, never thousands."""
    shown = "; ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")

"""What poll mode compares to tell that a model changed on disk: `config.yaml` and the version folders.

Taken just before a model is read, so a change made while it loads shows at the next poll. Publishing
is expected to be atomic (a version folder written under a hidden name such as `.tmp-3`, then renamed to
`3`; `config.yaml` replaced with `os.replace`): hidden and non-numeric folders are not versions, so a
half-written version is never seen. A model file copied in place still settles: its size and time
change again once the copy ends, and the model is read again.
"""

from __future__ import annotations

from pathlib import Path

from service.schema.config import CONFIG_FILE, MODEL_FILE, is_version_dir

FileStamp = tuple[int, int, int] | None
"""(modification time in ns, size, inode) of a file, None when it is missing or unreadable."""
Fingerprint = tuple[FileStamp, tuple[tuple[str, FileStamp], ...]]
"""config.yaml's stamp, and each numeric version folder with its model file's stamp."""


def _stamp(path: Path) -> FileStamp:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def fingerprint(model_dir: Path) -> Fingerprint:
    """A model directory's fingerprint (blocking: a few stat calls; an unreadable folder lists nothing)."""
    try:
        versions = sorted(p for p in model_dir.iterdir() if is_version_dir(p))
    except OSError:
        versions = []
    return _stamp(model_dir / CONFIG_FILE), tuple((p.name, _stamp(p / MODEL_FILE)) for p in versions)

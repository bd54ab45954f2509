"""Files the package writes for people: one atomic write for all of them.

The dashboard is rewritten by every scheduled run while an executive may have it open,
`calibrate --suggest` overwrites a playbook CS ops edit, `sample` and the demo write
CRM snapshots other commands read. A crash or a full disk halfway must leave the old
file (or none), never half of the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o644
"""Readable by everyone, like a file an editor saves: a temporary file starts at 0600."""


def atomic_write(path: Path, data: str | bytes, mode: int = FILE_MODE) -> Path:
    """Write `data` (text as UTF-8, or bytes) to `path` all at once; returns `path`.

    How: a temporary file in the same folder (a rename is atomic only within one file
    system), flushed and fsynced so the rename never lands before the bytes, then
    `os.replace` over `path` (POSIX `rename(2)`: readers see the old file or the new
    one). The parent folder is created. Raises `OSError` (no permission, disk full);
    the temporary file is then removed and `path` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path

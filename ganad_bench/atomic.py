"""Files written whole or not at all: the one implementation behind result rows, checkpoints, cached arrays
and job outcomes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call `write(handle)` on a uniquely named temporary file beside `path` (`.<name>.<random>.part`), fsync,
    then rename it over `path`: readers see the old file or the whole new one, a kill at any moment leaves
    at most a `.part` file (removed by the run that next holds the folder), and two writers never share a
    temporary name. A link, or a target that exists and is not a regular file (a device, a pipe:
    `--out /dev/stdout`), is written through directly: renaming over it would replace the link or the device
    itself (as root, /dev/stdout became a file)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir()):
        with open(path, "wb" if binary else "w") as out:
            write(out)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600: give the file the permissions open() would
    try:
        with os.fdopen(handle, "wb" if binary else "w") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

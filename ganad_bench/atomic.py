"""Files written whole or not at all: the one implementation behind result rows, checkpoints, cached arrays
and job outcomes; and the one reader of the NumPy files among them, which never unpickles."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from ganad_bench.errors import first_line


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call `write(handle)` on a uniquely named temporary file beside `path` (`.<name>.<random>.part`), fsync,
    then rename it over `path`: readers see the old file or the whole new one, a kill at any moment leaves
    at most a `.part` file (removed by the run that next holds the folder), and two writers never share a
    temporary name; a write that fails on a full disk is an OSError of errno ENOSPC, whatever the writer
    raised. A link, or a target that exists and is not a regular file (a device, a pipe:
    `--out /dev/stdout`), is written through directly: renaming over it would replace the link or the device
    itself (as root, /dev/stdout became a file)."""
    path = Path(path)
    if writes_through(path):
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
    except BaseException as err:
        full = isinstance(err, Exception) and not isinstance(err, OSError) and disk_full(path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:  # torch.save reports a full disk as "unexpected pos 379776 vs 379664" (a RuntimeError)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise
    return path


def disk_full(folder: Path) -> bool:
    """Whether the file system holding `folder` has under 1 MiB left for this user: asked while a failed
    write's temporary file still holds what it took."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def writes_through(path: Path) -> bool:
    """Whether `write_atomic` writes into `path` directly: a link, or something that is neither a regular file
    nor a folder (a device, a pipe), which renaming over would replace."""
    return path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir())


def check_writable(path: Path) -> None:
    """Raise the OSError `write_atomic(path, ...)` would meet, before the work whose result it is to hold
    (creating nothing: a missing folder is made by the write): a regular file is replaced from a temporary file
    beside it, so its folder must be writable; a link or a device (/dev/stdout) only needs its target to be."""
    # where a missing folder would go (`Path("")` is ".", which has no parents: the current folder)
    existing = next((folder for folder in path.parents if folder.exists()), Path.cwd())
    if not existing.is_dir():  # mkdir would say "File exists" of it
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if (path.exists() and not os.access(path, os.W_OK)) or (not writes_through(path)
                                                            and not os.access(existing, os.W_OK)):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class UnreadableArrays(Exception):
    """A NumPy file that is missing or not what was saved. Its text is the reason in a few words, for the
    caller's own message; `missing` tells a file that is not there from a damaged one."""

    def __init__(self, reason: str, missing: bool = False):
        super().__init__(reason)
        self.missing = missing


def read_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of the .npz archive at `path`, read whole; UnreadableArrays if the file is missing, is
    empty, cut short, not an archive, holds Python objects, or lacks one of the `required` arrays."""
    with _reading():
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UnreadableArrays("a single .npy array, not a .npz archive")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    absent = [name for name in required if name not in arrays]
    if absent:
        raise UnreadableArrays(f"no array '{absent[0]}' in it")
    return arrays


def read_npy(path: Path) -> np.ndarray:
    """The array of the .npy file at `path`; UnreadableArrays as read_npz, and for a .npz archive (NumPy
    reads one whatever the file's name)."""
    with _reading():
        array = np.load(path, allow_pickle=False)
        if not isinstance(array, np.ndarray):
            array.close()
            raise UnreadableArrays("a .npz archive of several arrays: save the one to give with np.save")
    return array


@contextlib.contextmanager
def _reading():
    """Turns what np.load and reading its arrays raise on a file that is not what was saved into
    UnreadableArrays, in words that suggest no unsafe fix: NumPy takes any file that is neither .npy nor
    .npz for a pickle and suggests `allow_pickle=`, which would run code from the file."""
    try:
        yield
    except FileNotFoundError as err:
        raise UnreadableArrays(first_line(err), missing=True) from None
    except EOFError:  # an empty file, or an .npy cut short
        raise UnreadableArrays("empty or cut short") from None
    except zipfile.BadZipFile:
        raise UnreadableArrays("a damaged .npz archive") from None
    except (OSError, ValueError) as err:  # unreadable, of another kind, or holding objects
        reason = first_line(err)
        if "pickle" in reason:
            reason = "not a NumPy .npy / .npz file of numbers; pickled Python objects are never read"
        raise UnreadableArrays(reason) from None

"""Errors a user can fix. Their message is one line that names the fix; the CLI prints it
without a traceback and exits non-zero, before any result file is written."""

import errno
import functools
from pathlib import Path


class GanadError(Exception):
    """Base class of every user-fixable error (bad config, missing or corrupted data)."""


class ConfigError(GanadError):
    """The composed configuration is impossible (a fraction out of range, an unknown name, ...)."""


class DataError(GanadError):
    """A data file is missing, corrupted, or in an unexpected format."""


class DataFileMissing(DataError):
    """A canonical data file could not be found locally nor downloaded."""


class ChecksumMismatch(DataError):
    """A data file exists but its checksum differs from the canonical one."""


class InputError(ConfigError, ValueError):
    """Samples handed to a detector cannot be used (not an array of samples, another shape than it was fitted
    on, NaN or inf); also a ValueError, as scikit-learn raises for such input."""


class TrainingDiverged(RuntimeError):
    """Training produced a NaN or inf; the run ends with status 'diverged' (not a user error)."""


def first_line(err: BaseException | str, empty: str | None = None) -> str:
    """An exception's message, or a text, cut to its first line that is not blank, for a one-line error or log
    line: torch appends its C++ backtrace to an error's text. Without such a line: `empty`, or the exception
    type's name (`str(err).splitlines()[0]` raised IndexError there)."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if lines:
        return lines[0]
    if empty is not None:
        return empty
    return "" if isinstance(err, str) else type(err).__name__


def fault_text(err: BaseException) -> str:
    """`Type: message` of a fault that ended a run (its row's `error`), on one line, with the fix where the fault
    has one: a full disk (a checkpoint, a score file or the row itself could not be written). The message's
    first line only: torch appends its C++ backtrace to an error's text, and the run's log keeps the whole
    traceback."""
    text = f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        text += " (free space there, or set paths.output_dir to a disk with room; run again: it resumes from " \
                "the last checkpoint written whole)"
    return text


def one_line_errors(main):
    """A script's `main` that ends a user-fixable error as the CLI ends bad input: `error: <its first line>` on
    stderr (`console.error_exit`), exit status 2, no traceback (a missing data file, an unknown model in the
    overrides, a folder argument that is not one, ...). A script that finds nothing to report in a valid folder
    raises `error_exit(..., status=1)`, as the CLI's `no finished result.json` does."""
    @functools.wraps(main)
    def guarded(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except GanadError as err:
            from ganad_bench.console import error_exit  # rich: only once a script has something to say

            raise error_exit(first_line(err)) from None
    return guarded


def require_folder(path: Path, fix: str, missing: str | None = None) -> Path:
    """`path` where it is a folder, else a one-line ConfigError: `no such folder: <path> (<missing or fix>)`, or
    `not a folder: <path> (<fix>)` for a file: the commands' and scripts' check of a folder they are given, before
    they read or write anything."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no such folder: {path} ({missing or fix})")
    if not path.is_dir():
        raise ConfigError(f"not a folder: {path} ({fix})")
    return path

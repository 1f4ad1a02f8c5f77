"""Errors a user can fix. Their message is one line that names the fix; the CLI prints it
without a traceback and exits non-zero, before any result file is written."""

import functools


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


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line, for a one-line error or log line (its type's name when
    it has no message: `str(err).splitlines()[0]` raised IndexError there)."""
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__


def one_line_errors(main):
    """A script's `main` that ends a user-fixable error as the CLI does: `error: <its first line>` on stderr,
    exit status 1, no traceback (a missing data file, an unknown model in the overrides, ...)."""
    @functools.wraps(main)
    def guarded(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except GanadError as err:
            raise SystemExit(f"error: {first_line(err)}") from None
    return guarded

"""Errors a user can fix. Their message is one line that names the fix; the CLI prints it
without a traceback and exits non-zero, before any result file is written."""


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

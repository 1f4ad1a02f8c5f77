"""Cache of parsed arrays: an .npz per (dataset, source files) in the cache folder, plus an
in-process memo so a sweep parses each dataset once. The key includes the source files'
checksums, so a cached array can never outlive the file it came from."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganad_bench.atomic import UnreadableArrays, read_npz, write_atomic

log = logging.getLogger("ganad_bench")
_memo: dict[Path, dict[str, np.ndarray]] = {}


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays stored at `path` (an .npz), building and writing them atomically on a miss."""
    if path in _memo:
        return _memo[path]
    arrays = None
    if path.is_file():
        try:
            arrays = read_npz(path)
        except UnreadableArrays as err:
            # a damaged cache entry (truncated, empty, not an npz) is rebuilt from the verified source
            log.warning("parsed-data cache %s is unreadable (%s): rebuilding it", path, err)
            arrays = None
    if arrays is None:
        arrays = build()
        _write_npz(path, arrays)
    _memo[path] = arrays
    return arrays


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if any(array.dtype == object for array in arrays.values()):
        raise TypeError("object arrays cannot be cached without pickle: convert them to fixed-width dtypes")
    try:
        write_atomic(path, lambda out: np.savez(out, **arrays), binary=True)
    except OSError as err:  # a read-only or full cache only costs a re-parse next time
        log.warning("could not write the parsed-data cache %s (%s): continuing without it", path, err)

"""Cache of parsed arrays: an .npz per (dataset, source files) in the cache folder, plus an
in-process memo so a sweep parses each dataset once. The key includes the source files'
checksums, so a cached array can never outlive the file it came from."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

_memo: dict[Path, dict[str, np.ndarray]] = {}


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays stored at `path` (an .npz), building and writing them atomically on a miss."""
    if path in _memo:
        return _memo[path]
    arrays = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (OSError, ValueError):
            arrays = None  # a damaged cache entry is rebuilt from the verified source
    if arrays is None:
        arrays = build()
        _write_npz(path, arrays)
    _memo[path] = arrays
    return arrays


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if any(array.dtype == object for array in arrays.values()):
        raise TypeError("object arrays cannot be cached without pickle: convert them to fixed-width dtypes")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs a re-parse next time

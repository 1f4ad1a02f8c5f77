"""Feature scaling fitted on the training rows only (never on validation or test rows)."""

from __future__ import annotations

import numpy as np

from ganad_bench.errors import ConfigError

SCALERS = ("none", "minmax", "standard")


class Scaler:
    """`minmax` maps each training feature to [0, 1] (ALAD's KDD99 code uses sklearn's MinMaxScaler);
    `standard` to zero mean and unit variance; `none` keeps raw values. Constant training features get
    scale 1, so they stay finite instead of dividing by zero."""

    def __init__(self, kind: str = "none"):
        if kind not in SCALERS:
            raise ConfigError(f"unknown dataset.scaler '{kind}': choose one of {', '.join(SCALERS)}")
        self.kind = kind
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Scaler:
        x = x.reshape(len(x), -1).astype(np.float64)
        if self.kind == "minmax":
            self.offset, spread = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        elif self.kind == "standard":
            self.offset, spread = x.mean(axis=0), x.std(axis=0)
        else:
            self.offset, spread = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.scale = np.where(spread > 0, spread, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        shape = x.shape
        flat = (x.reshape(len(x), -1) - self.offset) / self.scale
        return flat.astype(np.float32).reshape(shape)

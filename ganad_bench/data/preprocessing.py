"""Feature scaling fitted on the training rows only (never on validation or test rows).

Tabular features use `Scaler` (dataset.scaler: none / minmax / standard). Images use `PixelScaler`
(dataset.scaler: pixels), a FIXED affine map of the uint8 pixel values to `dataset.pixel_range`: nothing
is fitted, so no statistic of the test images can leak into training.
"""

from __future__ import annotations

import numpy as np

from ganad_bench.errors import ConfigError, InputError

SCALERS = ("none", "minmax", "standard")
PIXEL_SCALER = "pixels"


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

    def state(self) -> dict:
        """The fitted scaling as plain arrays (kept with a run, so its detector can score new raw rows)."""
        return {"kind": self.kind, "offset": self.offset, "scale": self.scale}

    def transform(self, x: np.ndarray) -> np.ndarray:
        shape = x.shape
        # the width spelled out: a -1 cannot be inferred for zero rows
        flat = (x.reshape(len(x), int(np.prod(shape[1:]))) - self.offset) / self.scale
        # float32 holds the networks' inputs: a larger value would become inf, and be reported as missing
        beyond = beyond_float32(flat)
        if len(beyond):
            row, column = (int(i) for i in beyond[0])
            raise InputError(f"{len(beyond)} value(s) are beyond float32's range (3.4e38) once scaled as the run "
                             f"scales them ({self.kind}), the first {x.reshape(len(x), -1)[row, column]:g} at "
                             f"sample {row + 1}, feature {column + 1} (counting from 1): give values on the scale "
                             f"of the data the run was trained on")
        return flat.astype(np.float32).reshape(shape)


def beyond_float32(x: np.ndarray) -> np.ndarray:
    """The positions (as `np.argwhere` gives them) of the finite values of `x` past float32's range (3.4e38):
    the networks and Isolation Forest's trees compute in float32, where such a value becomes inf."""
    return np.argwhere(np.isfinite(x) & (np.abs(x) > np.finfo(np.float32).max))


class PixelScaler:
    """uint8 pixels -> float32 in `pixel_range`, by the fixed map p -> low + (high - low) * p / 255.

    [-1, 1] is the default: ALAD appendix A ("Pixels were scaled to be in range [-1,1]"), the range of a
    tanh generator output; MEMGAN, RCGAN and AMA do not state theirs, so DESIGN.md's rule (follow the
    closest sibling, ALAD) applies. [0, 1] is the other common choice (Deep SVDD's). Float32 halves the
    memory of the float64 that `Scaler` uses, which matters for the 99,289 SVHN images (1.2 GB as float32)."""

    kind = PIXEL_SCALER

    def __init__(self, pixel_range=(-1.0, 1.0)):
        values = list(pixel_range) if pixel_range is not None else []
        if len(values) != 2 or not all(isinstance(v, (int, float)) for v in values) or values[0] >= values[1]:
            raise ConfigError(f"dataset.pixel_range must be [low, high] with low < high, got {pixel_range!r}: "
                              f"e.g. dataset.pixel_range=[-1,1] or [0,1]")
        self.low, self.high = float(values[0]), float(values[1])

    def fit(self, x: np.ndarray) -> PixelScaler:
        if x.dtype != np.uint8:
            raise ConfigError(f"dataset.scaler={PIXEL_SCALER} expects uint8 images, got {x.dtype} features: "
                              f"use dataset.scaler=standard or minmax for tabular data")
        return self  # a fixed map: nothing to learn, and nothing learned from test images

    def state(self) -> dict:
        return {"kind": self.kind, "pixel_range": np.array([self.low, self.high])}

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = x.astype(np.float32)
        out *= np.float32((self.high - self.low) / 255.0)
        out += np.float32(self.low)
        return out


def make_scaler(dataset_cfg) -> Scaler | PixelScaler:
    """The scaler a dataset config asks for (`dataset.scaler`, and `dataset.pixel_range` for images)."""
    kind = dataset_cfg.get("scaler", "none") or "none"
    if kind == PIXEL_SCALER:
        return PixelScaler(dataset_cfg.get("pixel_range", (-1.0, 1.0)))
    if kind not in SCALERS:
        raise ConfigError(f"unknown dataset.scaler '{kind}': choose one of {', '.join((*SCALERS, PIXEL_SCALER))}")
    return Scaler(kind)


def scaler_from_state(state: dict) -> Scaler | PixelScaler:
    """The scaler `state()` described (no refitting)."""
    kind = str(state["kind"])
    if kind == PIXEL_SCALER:
        return PixelScaler(tuple(float(v) for v in state["pixel_range"]))
    scaler = Scaler(kind)
    scaler.offset, scaler.scale = np.asarray(state["offset"]), np.asarray(state["scale"])
    return scaler

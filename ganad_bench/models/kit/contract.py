"""The detector contract (DESIGN.md, "The detector contract"), after pyod's BaseDetector.

    detector = create_detector("iforest", seed=0)
    detector.fit(x_train)              # normal samples only; returns self
    scores = detector.score_samples(x) # 1-D, HIGHER = MORE anomalous
    detector.save(path); Detector.load(path)

Scores of a test set never depend on its order or on how it is chunked.

A detector's parameters (the config's `model.params`) are declared once: as the keyword-only arguments
of its constructor, with the paper's values as defaults. `default_params()` reads them from there (the
config composes them, `ganad_bench.config`), and every instance records the values it was built with in
`self.params` before its `__init__` runs, so a method file never repeats its parameter list
(`get_params` / `set_params` as scikit-learn's).
"""

from __future__ import annotations

import inspect
import pickle
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ganad_bench.errors import ConfigError


class Detector(ABC):
    name: str = "detector"
    # rows the detector was actually fitted on when it subsamples its training set (None: all of them)
    fit_rows: int | None = None
    # deep detectors: {epoch, code_version} of the checkpoint the training resumed from (None: from scratch)
    resumed_from: dict | None = None

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # bind the call to the constructor's signature (an unknown keyword is a TypeError here) and record
        # the model parameters, defaults filled in; unpickling calls __new__ without arguments
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        self.params = {name: bound.arguments[name] for name in cls.param_names()}
        return self

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The model parameters: the keyword-only arguments of the constructor."""
        return tuple(name for name, p in inspect.signature(cls.__init__).parameters.items()
                     if p.kind is inspect.Parameter.KEYWORD_ONLY)

    @classmethod
    def default_params(cls) -> dict:
        parameters = inspect.signature(cls.__init__).parameters
        return {name: parameters[name].default for name in cls.param_names()}

    def get_params(self, deep: bool = False) -> dict:
        return dict(self.params)

    def set_params(self, **params) -> Detector:
        unknown = sorted(set(params) - set(self.param_names()))
        if unknown:
            raise ValueError(f"{self.name} has no parameter(s) {', '.join(unknown)}")
        self.params.update(params)
        return self

    @property
    def device(self) -> str:
        """Where the detector computes (recorded in the result row)."""
        return "cpu"

    @abstractmethod
    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> Detector:
        """Fit on normal training samples (`x_val`: optional normal validation samples)."""

    @abstractmethod
    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores, one per sample; higher means more anomalous."""

    def write_artifacts(self, folder: Path) -> dict:
        """Files or facts a run keeps beside its result (e.g. MEMGAN's decoded memory); default none."""
        return {}

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as handle:
            pickle.dump(self, handle)

    @staticmethod
    def load(path: str | Path) -> Detector:
        with open(path, "rb") as handle:
            return pickle.load(handle)


def flatten(x: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n, features) float64, the input of the classic detectors."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def subsample(x: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """At most `max_samples` rows drawn without replacement (kernel methods scale as n^2 in memory
    and n^2..n^3 in time, so they fit on a seeded subsample of large training sets)."""
    if max_samples is None or len(x) <= max_samples:
        return x
    rows = np.random.default_rng(seed).choice(len(x), size=int(max_samples), replace=False)
    return x[np.sort(rows)]


def check_choice(param: str, value, choices) -> None:
    """A `model.params.<param>` that must be one of `choices` (a one-line ConfigError otherwise)."""
    if value not in choices:
        raise ConfigError(f"unknown model.params.{param} '{value}': choose one of {', '.join(map(str, choices))}")


def require(condition: bool, param: str, rule: str, value) -> None:
    """A `model.params.<param>` that must satisfy `rule` (e.g. "in [0, 1]", ">= 1")."""
    if not condition:
        raise ConfigError(f"model.params.{param} must be {rule}, got {value}")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value) -> bool:
    """An integer >= 1 (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_fraction(value) -> bool:
    """A float in (0, 1] (an int is a count, not a fraction)."""
    return isinstance(value, float) and 0.0 < value <= 1.0

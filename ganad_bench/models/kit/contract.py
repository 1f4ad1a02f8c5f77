"""The detector contract (DESIGN.md, "The detector contract"), after pyod's BaseDetector.

    detector = create_detector("iforest", seed=0)
    detector.fit(x_train)              # normal samples only; returns self
    scores = detector.score_samples(x) # 1-D, HIGHER = MORE anomalous (= decision_function, PyOD's name)
    flags = detector.predict(x)        # 1 = anomaly: score >= threshold_
    detector.save(path); Detector.load(path)

Scores of a test set never depend on its order or on how it is chunked. `fit` and `score_samples` check
their samples once for every method (`check_samples`: an array of samples, of the shape `fit` saw, finite
values; else an `InputError`, a ValueError) and hand them to the method's `fit_model` / `score_model`.
After `fit`, as PyOD's detectors, `decision_scores_` holds the scores of (at most `calibration_rows` of)
the training rows and `threshold_` their `1 - contamination` quantile, which `predict` uses
(`contamination` is not a model parameter: 0.1 by default, a run sets its protocol's).

Saved detectors never need unpickling: `save` writes tensors and plain values only (the weights of a deep
detector; the training rows of a classic one, which `load` refits deterministically from its seed) and
`load` reads them with `torch.load(weights_only=True)`.

A detector's parameters (the config's `model.params`) are declared once: as the keyword-only arguments
of its constructor, with the paper's values as defaults. `default_params()` reads them from there (the
config composes them, `ganad_bench.config`), and every instance records the values it was built with in
`self.params` before its `__init__` runs, so a method file never repeats its parameter list
(`get_params` / `set_params` as scikit-learn's).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError as ScikitLearnNotFitted

from ganad_bench.config import SEED_RULE, is_seed, typed
from ganad_bench.data.preprocessing import beyond_float32
from ganad_bench.errors import ConfigError, DataError, GanadError, InputError

SAVE_FORMAT = 1


class NotFittedError(ScikitLearnNotFitted, RuntimeError):
    """A detector used before `fit`: scikit-learn's NotFittedError (what code written for its estimators
    catches) and a RuntimeError."""

    def __init__(self, detector: str, call: str):
        super().__init__(f"{detector}: call fit() before {call}()")


class Detector(ABC):
    name: str = "detector"
    # rows the detector was actually fitted on when it subsamples its training set (None: all of them)
    fit_rows: int | None = None
    # deep detectors: {epoch, code_version} of the checkpoint the training resumed from (None: from scratch)
    resumed_from: dict | None = None
    # deep detectors: the most runs one of its training stages shared the process's time with (a pack), itself
    # included; 1: it trained alone
    pack_members: int = 1
    # the anomaly fraction `predict` flags (module docstring) and how many training rows calibrate it
    contamination: float = 0.1
    calibration_rows: int = 10_000
    # the most rows a run scores in one chunk on a CPU (None: `trainer.score_batch_size`), for a detector
    # whose every score is slow there: a run keeps its test scores after every chunk (`run.PartialScores`)
    score_chunk_rows: int | None = None

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # bind the call to the constructor's signature (an unknown keyword is a TypeError here) and record
        # the model parameters, defaults filled in; unpickling calls __new__ without arguments
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        seed = bound.arguments.get("seed", 0)
        if not is_seed(seed):
            raise ConfigError(f"seed must be {SEED_RULE}, got {seed!r}")
        self.params = {name: bound.arguments[name] for name in cls.param_names()}
        check_params(cls, self.params)
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
        type(self)(seed=self.seed, **{**self.params, **params})  # the constructor's checks, not a failed fit later
        self.params.update(params)
        return self

    @property
    def device(self) -> str:
        """Where the detector computes (recorded in the result row)."""
        return "cpu"

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> Detector:
        """Fit on normal training samples (`x_val`: optional normal validation samples), then calibrate
        `decision_scores_` and `threshold_` on the training rows."""
        x = check_samples(x, what="training samples")
        if len(x) < 2:  # nothing to learn a distribution from (and BatchNorm cannot train on one sample)
            raise InputError(f"{self.name} needs at least 2 training samples, got {len(x)}")
        if x_val is not None:
            x_val = check_samples(x_val, x.shape[1:], what="validation samples")
        # known before training ends: a deep run scores its test split between epochs for learning curves
        self.sample_shape_ = tuple(x.shape[1:])
        try:
            self.fit_model(x, x_val)
        except BaseException:
            del self.sample_shape_
            raise
        rows = subsample(np.asarray(x), self.calibration_rows, self.seed)
        self.decision_scores_ = np.asarray(self.score_samples(rows), dtype=np.float64)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100.0 * (1.0 - float(self.contamination))))
        return self

    @abstractmethod
    def fit_model(self, x: np.ndarray, x_val: np.ndarray | None = None) -> None:
        """The method's own fitting (what `fit` calls before calibrating)."""

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores, one per sample; higher means more anomalous."""
        shape = getattr(self, "sample_shape_", None)
        if shape is None:
            raise NotFittedError(self.name, "score_samples")
        x = check_samples(x, shape)
        if len(x) == 0:  # an empty test set scores to an empty array, as every method would if it could
            return np.empty(0, dtype=np.float64)
        return self.score_model(x)

    @abstractmethod
    def score_model(self, x: np.ndarray) -> np.ndarray:
        """The method's own scoring of checked samples (what `score_samples` calls)."""

    def set_contamination(self, value: float | None) -> None:
        """The anomaly fraction `predict` flags: a protocol's (before `fit`), or the default where it has none."""
        self.contamination = type(self).contamination if value is None else float(value)

    def reconstruct(self, x: np.ndarray) -> np.ndarray | None:
        """Reconstructions of `x` for pictures of a run; None for detectors that do not reconstruct."""
        return None

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """PyOD's name for `score_samples` (higher = more anomalous)."""
        return self.score_samples(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """1 where the score reaches `threshold_` (the training scores' 1 - contamination quantile), else 0."""
        if getattr(self, "threshold_", None) is None:
            raise NotFittedError(self.name, "predict")
        return (self.score_samples(x) >= self.threshold_).astype(np.int64)

    def validation_loss(self, x_val: np.ndarray) -> float:
        """A loss on normal validation rows, lower = better, for model selection without labels: the mean
        anomaly score (deep detectors: their own validation loss)."""
        return float(np.mean(self.score_samples(x_val)))

    def write_artifacts(self, folder: Path) -> dict:
        """Files or facts a run keeps beside its result (e.g. MEMGAN's decoded memory); default none."""
        return {}

    # ------------------------------------------------------------------------------------ save / load
    def saved_state(self) -> dict:
        """What `save` stores besides the parameters: tensors and plain values only."""
        raise NotImplementedError

    def load_state(self, state: dict) -> None:
        """Restore from `saved_state()`'s dict (the detector was built with the saved parameters)."""
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        import torch

        from ganad_bench.atomic import check_writable, write_atomic

        check_writable(Path(path))  # a folder given for the file is an IsADirectoryError naming it
        payload = {"format": SAVE_FORMAT, "model": self.name, "seed": self.seed, "params": self.get_params(),
                   "contamination": float(self.contamination), "state": self.saved_state()}
        return write_atomic(Path(path), lambda out: torch.save(payload, out), binary=True)

    @staticmethod
    def load(path: str | Path, device: str = "cpu") -> Detector:
        """A saved detector, read without unpickling anything (`torch.load(weights_only=True)`)."""
        import torch

        from ganad_bench.models.kit.registry import build_detector

        def damaged(err: Exception, first_sentence: bool = False) -> DataError:  # cut short, overwritten, edited
            text = " ".join(str(err).split()) or type(err).__name__  # torch's messages span lines
            text = f"no {err.args[0]!r} entry" if isinstance(err, KeyError) and err.args else text
            text = text.split(". ")[0] if first_sentence else text  # what failed, not torch's advice after it
            return DataError(f"{path} is not a readable saved detector ({text[:400]}): save it again (for a run: "
                             f"rerun it with force=true)")

        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except Exception as err:  # any failure to read it (torch raises several kinds) means the same
            raise damaged(err, first_sentence=True) from None
        if not isinstance(payload, dict) or payload.get("format") != SAVE_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ConfigError(f"{path} is not a saved ganad_bench detector (format {found!r})")
        try:
            state = payload["state"]
            trainer = {**(state.get("trainer") or {}), "device": device, "progress": False}
            detector = build_detector(payload["model"], payload["seed"], payload["params"], trainer)
            detector.contamination = payload["contamination"]
            detector.load_state(state)
        except GanadError:  # a model or parameter this version does not know: its own message
            raise
        except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as err:  # parts missing, or of
            raise damaged(err) from None  # other shapes than the networks of the model it names
        return detector


class ShallowDetector(Detector):
    """A detector without networks (Isolation Forest, OC-SVM, KDE): `fit_model` receives the training rows
    from `fit`, which keeps a reference to them, and a saved detector is those rows: `load` refits it, which
    gives the same model, as the fit is deterministic given the seed."""

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> Detector:
        super().fit(x, x_val)
        self.fit_input = np.asarray(x)  # kept once the fit succeeded: `save` stores these rows
        return self

    def saved_state(self) -> dict:
        import torch

        if getattr(self, "fit_input", None) is None:
            raise NotFittedError(self.name, "save")
        return {"rows": torch.from_numpy(np.ascontiguousarray(self.fit_input))}

    def load_state(self, state: dict) -> None:
        self.fit(state["rows"].numpy())


def check_samples(x, shape: tuple[int, ...] | None = None, what: str = "samples") -> np.ndarray:
    """`x` as an array of samples a detector can take: (n, features) rows or (n, *image shape) images, of
    `shape` per sample when given, numbers only, every one finite (a NaN would score NaN, which no threshold
    flags). Raises `InputError` naming the first problem and its fix."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise InputError(f"{what} of shape {x.shape}: give an array of shape (n, features) or (n, *image shape), "
                         f"e.g. x.reshape(-1, 1) for one feature")
    if not any(np.issubdtype(x.dtype, kind) for kind in (np.integer, np.floating, np.bool_)):  # complex too
        raise InputError(f"{what} of dtype {x.dtype}: give numbers (e.g. one-hot encode categorical columns)")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise InputError(f"{what} of shape {tuple(x.shape[1:])} each, but the detector was fitted on "
                         f"{tuple(shape)}: give the same features (or image shape) as in fit")
    if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))
        raise InputError(f"{len(bad)} value(s) of the {what} are not finite, the first {x[tuple(bad[0])]} at "
                         f"{_position(bad[0], x.ndim)}: fill or drop missing values first")
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 4:
        # the deep detectors (torch) and Isolation Forest (scikit-learn's trees) compute in float32, where a larger
        # value becomes inf; one rule for every detector keeps an input valid for all of them
        bad = beyond_float32(x)
        if len(bad):
            raise InputError(f"{len(bad)} value(s) of the {what} are beyond float32's range (3.4e38), in which the "
                             f"deep detectors compute, the first {x[tuple(bad[0])]:g} at {_position(bad[0], x.ndim)}: "
                             f"rescale the features")
    return x


def _position(index: np.ndarray, ndim: int) -> str:
    """Where a value of a batch of samples is, for a message: "sample 2, feature 5 (counting from 1)"."""
    where = ", ".join(str(int(i) + 1) for i in index[1:])
    return f"sample {int(index[0]) + 1}, {'feature' if ndim == 2 else 'position'} {where} (counting from 1)"


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


# parameters that size a network or a memory (>= 1 when set) and that count epochs or steps (>= 0), whichever
# model has them
SIZE_PARAMS = ("latent_dim", "width", "rep_dim", "memory_dim", "mem_slots", "n_components")
COUNT_PARAMS = ("pretrain_epochs", "warmup_epochs", "neg_start_epoch", "search_steps")
# the drop probability of a dropout layer: 1 would zero every unit (and divide by 0 to rescale the rest)
DROPOUT_PARAMS = ("image_dropout", "dropout")
# loss weights, penalties and shrinkage thresholds: a negative one turns a term the paper minimises into one
# the training maximises
NONNEGATIVE_PARAMS = ("w_adv", "w_con", "w_enc", "w_lat", "lambda_inter", "lambda_neg", "lambda_reg", "gp_weight",
                      "lambda_energy", "lambda_cov", "entropy_weight", "shrink_thres", "pretrain_weight_decay")
# step sizes of the optimisers a model runs itself (the trainer's own are checked by TrainerConfig)
POSITIVE_PARAMS = ("pretrain_lr", "search_lr")


def check_params(cls: type, params: dict) -> None:
    """Every model parameter against its constructor annotation, then the rules any model shares (a number is
    finite; sizes, counts, dropout rates, loss weights and step sizes in their ranges), before the method's own
    checks: a value of the wrong type (`n_memory=abc`, `spectral_norm=maybe`), an infinite or NaN one, or a size
    that cannot build a network is a one-line ConfigError, not a failed or diverged run."""
    parameters = inspect.signature(cls.__init__).parameters
    for name, value in params.items():
        annotation = parameters[name].annotation
        if annotation is inspect.Parameter.empty:
            continue
        number = typed(f"model.params.{name}", value, annotation)  # a ConfigError unless an annotated type takes it
        if not is_number(number):
            continue
        require(math.isfinite(number), name, "a finite number", value)
        for names, holds, rule in SHARED_RULES:
            if name in names:
                require(holds(number), name, rule, value)


# (parameter names, test, the rule as the error states it)
SHARED_RULES = ((SIZE_PARAMS, lambda v: v >= 1, ">= 1"), (COUNT_PARAMS, lambda v: v >= 0, ">= 0"),
                (DROPOUT_PARAMS, lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
                (NONNEGATIVE_PARAMS, lambda v: v >= 0.0, ">= 0"), (POSITIVE_PARAMS, lambda v: v > 0.0, "> 0"))


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

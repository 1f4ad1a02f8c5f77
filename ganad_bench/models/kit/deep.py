"""`DeepDetector`: the detector contract (`kit.contract`) on top of the training engine, the base of every
deep detector, adversarial or not.

A method file subclasses it, declares its parameters as keyword-only constructor arguments, and
implements `build(input_shape) -> DetectorModule` (optionally `after_fit(x_train)`, e.g. AMA fitting its
A-score on the training R-scores, or `train(x, x_val)` for several stages, e.g. Deep SVDD's pretraining);
the rest — the input map, seeding, building the networks from the data's shape, training, EMA scoring
in chunks, save / load — is here:

    det = create_detector("alad", seed=0, trainer={"epochs": 5, "device": "cpu"})
    det.fit(x_train, x_val)          # float32 (n, d) or (n, C, H, W) in [-1, 1]
    det.score_samples(x_test)        # 1-D, higher = more anomalous

`trainer` is the trainer config group (keys: `engine.TrainerConfig`; keys left out take
conf/trainer/default.yaml's values); `checkpoint_dir` is where `fit` saves and resumes its per-epoch
checkpoints (None: no checkpoints); `callbacks` (tests) are passed to the engine.

Learning curve (`trainer.curve_every`): `watch(x_test, labels, contamination)` before `fit` makes every
`curve_every` epochs of the scoring stage (not a pretraining stage) record the test metrics of the network
as it is then, scored exactly as the finished detector scores (`after_fit` first, e.g. AMA's Gaussian).
They are reported (`metrics.csv`, the row's `learning_curve`), never used to pick anything. A module with
several scores (`score_names`: ALAD's four, RCGAN's two) records each, as `test_<metric>/<score>`, so that
a run which only scores its training twin's networks (`run.adopt_training`) reads its own score's curve
from the twin's history instead of the twin's (`learning_curve`).

Input map (`contrast_norm`, for the detectors that declare it; images only): Ruff et al. Sec. 4.1 normalise
MNIST / CIFAR-10 by global contrast normalisation with the l1 norm, then min-max scale to [0, 1] with the
training (normal-class) images' extremes. `input_map.InputMap(contrast_norm="l1")` does exactly this per
image (mean subtracted, divided by its l1 norm), with the min and max of the training images of the run;
GCN is invariant to our fixed [-1, 1] pixel map, so it sees the same images as Ruff's [0, 1] ones. Tabular
rows are used as the pipeline scales them (min-max on the training rows).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np
import torch

from ganad_bench.config import (
    ADDED_MODEL_PARAMS,
    ADDED_TRAINER_DEFAULTS,
    BOOKKEEPING_TRAINER_KEYS,
    at_added_default,
    without_inert_trainer_keys,
)
from ganad_bench.models.kit import blocks
from ganad_bench.models.kit.contract import Detector, NotFittedError
from ganad_bench.models.kit.input_map import InputMap, check_contrast_norm
from ganad_bench.training.device import seed_everything
from ganad_bench.training.engine import DetectorModule, Engine
from ganad_bench.training.pack import current_rendezvous
from ganad_bench.training.settings import TrainerConfig

# a checkpoint resumes on another device too: the fingerprint ignores it with the bookkeeping keys
FINGERPRINT_IGNORES = (*BOOKKEEPING_TRAINER_KEYS, "device")
CHECKPOINT_FORMAT = 2


def fingerprinted_trainer(trainer: TrainerConfig) -> dict:
    """The trainer settings a checkpoint must share to be resumed: all but the bookkeeping keys and the device,
    keys added since at the default earlier runs had, and the early-stopping keys without a patience (their
    checkpoints resume)."""
    settings = without_inert_trainer_keys({"trainer": dataclasses.asdict(trainer)})["trainer"]
    return {k: v for k, v in settings.items() if k not in FINGERPRINT_IGNORES
            and not at_added_default(k, v, ADDED_TRAINER_DEFAULTS)}
STREAM_STATE = ".state"  # the buffer of a `training.noise.RandomStream`


def every_score(module, score: Callable[[], object]) -> dict:
    """`score()` evaluated with each of the module's `score_names` (ALAD Table VII's four, RCGAN's two) picked
    in turn, the module's own `score_name` put back afterwards; {} for a module of one score."""
    results = {}
    if not getattr(module, "score_names", ()):
        return results
    chosen = module.score_name
    try:
        for name in module.score_names:
            module.score_name = name
            results[name] = score()
    finally:
        module.score_name = chosen
    return results


class DeepDetector(Detector):
    # parameters that change only how a trained module scores, never its training (ALAD's and RCGAN's
    # `score`): runs that differ in them share one training (`run.training_twin`)
    scoring_params: tuple[str, ...] = ()

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=()):
        super().__init__(seed)
        self.trainer = TrainerConfig.from_dict(trainer)
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = list(callbacks)
        check_contrast_norm(self.params.get("contrast_norm"))
        self.engine: Engine | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.input_map: InputMap | None = None
        self.watched: tuple | None = None  # (test rows, labels, contamination) of the learning curve
        self.x_fit: np.ndarray | None = None  # the preprocessed training rows while `fit` runs

    # --------------------------------------------------------------------- what a method implements
    def build(self, input_shape: tuple[int, ...]) -> DetectorModule:
        raise NotImplementedError

    def after_fit(self, x: np.ndarray) -> None:
        """Called once training has ended, with the (preprocessed) training rows (default: nothing)."""

    def module_params(self, *leave_out: str) -> dict:
        """The parameters the method's module takes as keywords: all but `leave_out` (resolved by the
        detector, e.g. a null latent size)."""
        return {key: value for key, value in self.params.items() if key not in leave_out}

    def latent_dim(self, input_shape: tuple[int, ...]) -> int:
        """`params.latent_dim`, or the architecture's default (`blocks.default_latent_dim`) when it is null."""
        return int(self.params["latent_dim"] or blocks.default_latent_dim(input_shape, self.params["arch"]))

    # ------------------------------------------------------------------------------------ training
    def fit_model(self, x: np.ndarray, x_val: np.ndarray | None = None) -> None:
        x = np.asarray(x, dtype=np.float32)
        self.input_map = self.fit_input_map(x)
        x = self.preprocess(x)
        x_val = None if x_val is None else self.preprocess(x_val)
        self.input_shape = tuple(int(s) for s in x.shape[1:])
        seed_everything(self.seed)
        self.x_fit = x
        self.pack_members = 1
        try:
            self.engine = self.train(x, x_val)
        finally:
            self.x_fit = None
        self.history = self.engine.history
        self.resumed_from = self.engine.resumed_from
        self.after_fit(x)

    def train(self, x: np.ndarray, x_val: np.ndarray | None) -> Engine:
        """Build the network and train it in one stage (Deep SVDD: two); returns the scoring stage's engine."""
        return self.train_stage(None, self.build(self.input_shape), self.trainer, x, x_val)

    def train_stage(self, stage: str | None, module: DetectorModule, trainer: TrainerConfig, x, x_val) -> Engine:
        """Train `module` with its own engine; a named stage checkpoints into its own sub-folder."""
        folder = self.checkpoint_dir
        if folder is not None and stage is not None:
            folder = f"{folder}/{stage}"
        # parameters added after runs were made stay out at their old default, as in the folder hash, so that
        # a checkpoint written before them resumes
        added = ADDED_MODEL_PARAMS.get(self.name, {})
        params = sorted((k, v) for k, v in self.params.items() if not at_added_default(k, v, added))
        training_params = [(k, v) for k, v in params if k not in self.scoring_params]
        fingerprint = {"model": self.name, "stage": stage, "params": repr(params),
                       "training_params": repr(training_params),
                       "shape": self.input_shape, "n_train": len(x), "n_val": 0 if x_val is None else len(x_val),
                       "seed": self.seed, "trainer": repr(fingerprinted_trainer(trainer)),
                       # 2: the networks carry their random streams (`training.noise`); a checkpoint of the
                       # format before is not resumed (the run starts afresh, with a warning)
                       "format": CHECKPOINT_FORMAT}
        engine = Engine(module, trainer, seed=self.seed, checkpoint_dir=folder, callbacks=self.callbacks,
                        fingerprint=fingerprint)
        if self.watched is not None and stage != "pretrain":
            engine.curve = self.learning_curve_point
        rendezvous = current_rendezvous()  # a run of a pack trains its stages with the others' (`training.pack`)
        engine = rendezvous.train(engine, x, x_val) if rendezvous is not None else engine.fit(x, x_val)
        self.pack_members = max(self.pack_members, engine.pack_members)
        return engine

    # ---------------------------------------------------------------------------- learning curve
    def watch(self, x_test: np.ndarray, labels: np.ndarray, contamination: float | None = None) -> None:
        """Record the test metrics along training (module docstring; `trainer.curve_every` sets how often)."""
        self.watched = (np.asarray(x_test, dtype=np.float32), np.asarray(labels), contamination)

    def learning_curve_point(self, engine: Engine) -> dict:
        """The test metrics of `engine`'s networks now, as `test_<metric>`, or `test_<metric>/<score>` for every
        score of a module that has several (the engine restores every RNG state and buffer afterwards,
        `Engine.curve_point`)."""
        x_test, labels, contamination = self.watched
        finished = self.engine
        self.engine = engine
        try:
            self.after_fit(self.x_fit)
            if len(getattr(engine.scoring_module, "score_names", ())) < 2:
                return self._curve_metrics(self.score_samples(x_test), labels, contamination, "")
            each = every_score(engine.scoring_module, lambda: self.score_samples(x_test))
        finally:
            self.engine = finished
        return {key: value for name, scores in each.items()
                for key, value in self._curve_metrics(scores, labels, contamination, f"/{name}").items()}

    @staticmethod
    def _curve_metrics(scores: np.ndarray, labels, contamination, suffix: str) -> dict:
        from ganad_bench.metrics import evaluate

        if not np.isfinite(scores).all():
            return {f"test_nonfinite_scores{suffix}": int((~np.isfinite(scores)).sum())}
        return {f"test_{name}{suffix}": value for name, value in evaluate(labels, scores, contamination).items()}

    def learning_curve(self, adopted: bool = False) -> list[dict]:
        """The learning-curve points of the training history as this run scores: the epoch, the normal-only
        validation loss where there are validation rows, and its own score's `test_<metric>`. `adopted`: the
        history is a training twin's (`run.adopt_training`), so a point that does not name its scores
        (recorded by another score's run) is not this run's."""
        own = getattr(self.scoring_module, "score_name", None) if self.engine is not None else None
        points = []
        for record in self.history or ():
            tests = {k: v for k, v in record.items() if k.startswith("test_")}
            named = {k: v for k, v in tests.items() if "/" in k}
            if named:
                mine = {k.removesuffix(f"/{own}"): v for k, v in named.items() if k.endswith(f"/{own}")}
            else:
                mine = {} if adopted and own is not None else tests
            if mine:
                points.append({k: v for k, v in record.items() if k in ("epoch", "val_loss")} | mine)
        return points

    # --------------------------------------------------------------------------------- input map
    def contrast_normalised(self, shape) -> bool:
        return bool(self.params.get("contrast_norm")) and blocks.is_image(tuple(shape))

    def fit_input_map(self, x: np.ndarray) -> InputMap | None:
        if not self.contrast_normalised(x.shape[1:]):
            return None
        return InputMap(contrast_norm=self.params["contrast_norm"]).fit(x.reshape(len(x), -1).astype(np.float64))

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.input_map is None:
            return x
        return self.input_map(x.reshape(len(x), -1).astype(np.float64)).astype(np.float32).reshape(x.shape)

    # ----------------------------------------------------------------------------------- scoring
    @property
    def scoring_module(self) -> DetectorModule:
        """The network used for scoring (the EMA copy when the trainer keeps one)."""
        if self.engine is None:
            raise NotFittedError(self.name, "score_samples")
        return self.engine.scoring_module

    @property
    def device(self) -> str:
        return str(self.engine.device if self.engine is not None else self.trainer.device)

    def score_model(self, x: np.ndarray) -> np.ndarray:
        return self.engine.score(self.preprocess(x))

    def validation_loss(self, x_val: np.ndarray) -> float:
        """The module's own loss on normal validation rows (`DetectorModule.val_loss`, e.g. ALAD's mean Features
        score), on the scoring network."""
        if self.engine is None:
            raise NotFittedError(self.name, "validation_loss")
        x = torch.as_tensor(self.preprocess(x_val)).to(self.engine.device)
        return float(self.engine.validation_loss(x))

    def reconstruct(self, x: np.ndarray) -> np.ndarray | None:
        """The scoring network's reconstructions of `x` (for pictures of a run), None when it has none."""
        module = self.scoring_module
        if not hasattr(module, "reconstruct"):
            return None
        module.eval()
        with torch.no_grad():
            out = module.reconstruct(torch.as_tensor(self.preprocess(x)).to(self.engine.device))
        return out.float().cpu().numpy()

    def scoring_digest(self) -> str:
        """A digest of what this detector's scores depend on: its parameters (the score it computes: ALAD Table
        VII's runs share one training), the scoring network's weights and buffers (random streams aside:
        training state, which scoring does not read), the fitted input map and the device type (another
        device's arithmetic differs in the last bits). Saved test scores count for a run again only under the
        same digest (`run.PartialScores`)."""
        if self.engine is None:
            raise NotFittedError(self.name, "scoring_digest")
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{self.name} {sorted(self.get_params().items())} {self.engine.device.type} "
                      f"{self.input_shape}".encode())
        for name, value in sorted(self.engine.scoring_module.state_dict().items()):
            if not f".{name}".endswith(STREAM_STATE):
                digest.update(name.encode())
                digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        if self.input_map is not None:
            digest.update(repr(self.input_map.state()).encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------------------- save / load
    def saved_state(self) -> dict:
        """The scoring network's weights and buffers (EMA copy, fitted statistics such as AMA's R-score
        Gaussian or DAGMM's mixture), its input shape, the fitted input map and the trainer settings."""
        if self.engine is None:
            raise NotFittedError(self.name, "save")
        return {"input_shape": list(self.input_shape), "trainer": dataclasses.asdict(self.trainer),
                "module": {k: v.detach().cpu() for k, v in self.engine.scoring_module.state_dict().items()},
                "input_map": None if self.input_map is None else self.input_map.state(),
                "decision_scores": torch.from_numpy(np.asarray(self.decision_scores_)),
                "threshold": float(self.threshold_)}

    def load_state(self, state: dict) -> None:
        self.input_shape = tuple(int(s) for s in state["input_shape"])
        self.sample_shape_ = self.input_shape  # `preprocess` keeps a sample's shape
        self.input_map = None if state["input_map"] is None else InputMap.from_state(state["input_map"])
        with torch.random.fork_rng(devices=[]):  # building the networks must not move the caller's RNG
            module = self.build(self.input_shape)
        self.engine = Engine(module, self.trainer, seed=self.seed)
        missing, unexpected = self.engine.scoring_module.load_state_dict(state["module"], strict=False)
        # a detector saved before the networks carried random streams still scores: streams are training state
        if unexpected or any(not f".{key}".endswith(STREAM_STATE) for key in missing):
            self.engine.scoring_module.load_state_dict(state["module"])  # raises, naming the keys
        self.engine.scoring_module.eval()
        self.decision_scores_ = state["decision_scores"].numpy()
        self.threshold_ = float(state["threshold"])

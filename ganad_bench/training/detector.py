"""`AdversarialDetector`: the detector contract (models/base.py) on top of the training engine.

Every deep detector (adversarial or not) subclasses it and implements `build(input_shape) -> AdversarialModule`
(optionally `after_fit(x_train)`, e.g. AMA fitting its A-score on the training R-scores); the rest —
seeding, building the networks from the data's shape, training, EMA scoring in chunks — is here:

    det = create_detector("alad", seed=0, trainer={"epochs": 5, "device": "cpu"}, checkpoint_dir=None)
    det.fit(x_train, x_val)          # float32 (n, d) or (n, C, H, W) in [-1, 1]
    det.score_samples(x_test)        # 1-D, higher = more anomalous

`trainer` is the trainer config group (conf/trainer/default.yaml; keys: `engine.TrainerConfig`) laid over
the class's `trainer_defaults`; `checkpoint_dir` is where `fit` saves and resumes its per-epoch
checkpoint (None: no checkpoints). `callbacks` (tests) are passed to the engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ganad_bench.models import blocks
from ganad_bench.models.base import Detector
from ganad_bench.training.device import seed_everything
from ganad_bench.training.engine import AdversarialModule, Engine, TrainerConfig


class AdversarialDetector(Detector):
    uses_trainer = True
    # per-model trainer defaults, under the config's `trainer` keys
    trainer_defaults: dict = {}

    def __init__(self, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, callbacks=(), **params):
        super().__init__(seed)
        merged = {**self.trainer_defaults, **{k: v for k, v in dict(trainer or {}).items()}}
        self.trainer = TrainerConfig.from_dict(merged)
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = list(callbacks)
        self.params = params
        self.engine: Engine | None = None
        self.input_shape: tuple[int, ...] | None = None

    def build(self, input_shape: tuple[int, ...]) -> AdversarialModule:
        raise NotImplementedError

    def latent_dim(self, input_shape: tuple[int, ...]) -> int:
        """`params.latent_dim`, or the architecture's default (`blocks.default_latent_dim`) when it is null."""
        return int(self.params["latent_dim"] or blocks.default_latent_dim(input_shape, self.params["arch"]))

    def fit(self, x: np.ndarray, x_val: np.ndarray | None = None) -> AdversarialDetector:
        x = np.asarray(x, dtype=np.float32)
        self.input_shape = tuple(int(s) for s in x.shape[1:])
        seed_everything(self.seed)
        module = self.build(self.input_shape)
        fingerprint = {"model": self.name, "params": repr(sorted(self.params.items())), "shape": self.input_shape,
                       "n_train": len(x), "n_val": 0 if x_val is None else len(x_val), "seed": self.seed,
                       "trainer": repr({k: v for k, v in dataclasses.asdict(self.trainer).items()
                                        if k not in ("progress", "score_batch_size", "device")})}
        self.engine = Engine(module, self.trainer, seed=self.seed, checkpoint_dir=self.checkpoint_dir,
                             callbacks=self.callbacks, fingerprint=fingerprint)
        self.engine.fit(x, x_val)
        self.history = self.engine.history
        self.after_fit(x)
        return self

    def after_fit(self, x: np.ndarray) -> None:
        """Called once training has ended, with the training rows (default: nothing)."""

    @property
    def module(self) -> AdversarialModule:
        """The network used for scoring (the EMA copy when the trainer keeps one)."""
        if self.engine is None:
            raise RuntimeError(f"{self.name}: call fit() before score_samples()")
        return self.engine.scoring_module

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        if self.engine is None:
            raise RuntimeError(f"{self.name}: call fit() before score_samples()")
        return self.engine.score(x)

    # save / load (models/base.py pickles the detector): spectrally normalised modules only serialise
    # through state_dict, so a pickled detector holds the scoring network's state and rebuilds it.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["callbacks"] = []  # test hooks are not part of a saved detector
        engine = state.pop("engine", None)
        state["engine"] = None
        if engine is not None:
            state["_scoring_state"] = {k: v.detach().cpu() for k, v in engine.scoring_module.state_dict().items()}
        return state

    def __setstate__(self, state):
        scoring_state = state.pop("_scoring_state", None)
        self.__dict__.update(state)
        if scoring_state is not None:
            with torch.random.fork_rng(devices=[]):
                module = self.build(self.input_shape)
            self.engine = Engine(module, self.trainer, seed=self.seed)
            self.engine.scoring_module.load_state_dict(scoring_state)
            self.engine.scoring_module.eval()

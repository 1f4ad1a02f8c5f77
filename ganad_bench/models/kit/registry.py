"""Name -> detector class, filled by the `@register` decorator in each method file, and the two ways to
make a detector:

* `create_detector(name, seed=0, dataset=None, trainer=None, **params)` — the Python API. It composes
  the same Hydra config as `ganad-bench model=<name> [dataset=<dataset>]` (the model's parameters and
  training settings, per dataset where `conf/dataset_model/` has a file), then lays `trainer` and
  `params` over it, so a detector made here trains exactly like the CLI's.
* `build_detector(name, seed, params, trainer, ...)` — from settings that are already composed (`run`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit.catalog import catalog_entry
from ganad_bench.training.settings import TrainerConfig

if TYPE_CHECKING:
    from ganad_bench.models.kit.contract import Detector

_DETECTORS: dict[str, type[Detector]] = {}


def register(name: str):
    def decorate(cls):
        if name in _DETECTORS:
            raise ValueError(f"detector '{name}' registered twice")
        cls.name = name
        _DETECTORS[name] = cls
        return cls

    return decorate


def detector_class(name: str) -> type[Detector]:
    """The class registered as `name`: only its method file is imported (`catalog` knows which)."""
    entry = catalog_entry(name)
    if name not in _DETECTORS:
        importlib.import_module(entry.module)  # its `@register` fills _DETECTORS
    return _DETECTORS[name]


def build_detector(name: str, seed: int = 0, params: dict | None = None, trainer: dict | None = None,
                   checkpoint_dir=None, callbacks=()) -> Detector:
    """A fresh detector from composed settings: `params` are its `model.params`, `trainer` the trainer config
    group (deep detectors only; `checkpoint_dir` holds their per-epoch checkpoints, `callbacks` go to the
    engine)."""
    cls, deep = detector_class(name), catalog_entry(name).deep
    if trainer is not None:  # a bad trainer value is a config error for every model (the row records them)
        device = TrainerConfig.from_dict(trainer).device
        if deep:  # whether that device is there matters to the models that train on it (and loads torch)
            from ganad_bench.training.device import resolve_device

            resolve_device(device)
    known = cls.default_params()
    unknown = sorted(set(params or {}) - set(known))
    if unknown:  # `+model.params.latent_dm=3`, `create_detector("alad", latent_dm=3)`: the same line as a typo
        from ganad_bench.config import unknown_setting  # that Hydra refuses (`model.params.latent_dm=3`)

        raise ConfigError(unknown_setting(", ".join(f"model.params.{key}" for key in unknown), f"model {name}", known))
    runtime = {}
    if deep:
        runtime = {"trainer": dict(trainer or {}), "checkpoint_dir": checkpoint_dir, "callbacks": callbacks}
    try:
        return cls(seed=seed, **runtime, **dict(params or {}))
    except TypeError as err:
        raise ConfigError(f"model {name}: {err} (check the model.params keys)") from None


def create_detector(name: str, seed: int = 0, dataset: str | None = None, trainer: dict | None = None,
                    checkpoint_dir=None, callbacks=(), **params) -> Detector:
    """A fresh detector with the CLI's settings for `name` (and `dataset`), `trainer` and `params` laid over
    them: `create_detector("iforest").fit(x).score_samples(x)`."""
    from ganad_bench.config import model_settings

    detector_class(name)  # an unknown name fails before any config is composed
    settings = model_settings(name, dataset)
    return build_detector(name, seed, {**settings["params"], **params}, {**settings["trainer"], **(trainer or {})},
                          checkpoint_dir=checkpoint_dir, callbacks=callbacks)

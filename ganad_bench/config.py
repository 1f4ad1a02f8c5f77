"""Config helpers shared by the CLI, `run` and the Python API: resolvers, the `model_params/<model>`
nodes read from the detectors' constructors, composition, and the resolved plain-dict form.

Where each setting is declared (once):
* a detector's parameters: the keyword-only arguments of its constructor (`models/kit/contract.py`);
  `register_configs` stores them as the Hydra node `model_params/<model>`, which `conf/model/<model>.yaml`
  places at `model.params`, so every key can be overridden (`model.params.score=l1`) and an unknown key
  is an error;
* training settings: `conf/trainer/default.yaml`, then the model's (`conf/model/<model>.yaml`) and the
  (dataset, model) pair's (`conf/dataset_model/<dataset>_<model>.yaml`) overrides;
* the rest (data, protocols, paths): their config groups.
"""

from __future__ import annotations

import copy
from functools import cache

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganad_bench.errors import ConfigError

PARAMS_GROUP = "model_params"


def _first_set(*values):
    """`${first_set:a,b}`: the first value that is not null (oc.select keeps an explicit null)."""
    return next((value for value in values if value is not None), None)


if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver("first_set", _first_set)


def _plain(value):
    """A default argument as a config value (tuples become lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def register_configs() -> None:
    """Store every detector's constructor defaults as the Hydra config `model_params/<model>`."""
    from hydra.core.config_store import ConfigStore

    from ganad_bench.models.kit.registry import available_detectors, detector_class

    store = ConfigStore.instance()
    for name in available_detectors():
        defaults = {key: _plain(value) for key, value in detector_class(name).default_params().items()}
        store.store(group=PARAMS_GROUP, name=name, node=defaults)


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The app's config with command-line style overrides (inside a running Hydra app or an
    `initialize_config_module` block too)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name="config", overrides=list(overrides))
        with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
            return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"invalid config {' '.join(overrides)}: {str(err).splitlines()[0]}") from None


@cache
def _model_settings(model: str, dataset: str | None) -> tuple[dict, dict]:
    # without a dataset: the model's own settings, no dataset_model file and no contamination (OC-SVM's nu
    # falls back to its default)
    overrides = ([f"model={model}", f"dataset={dataset}"] if dataset else
                 [f"model={model}", "~dataset_model", "protocol.contamination=null"])
    config = to_container(compose_config(overrides))
    return config["model"].get("params") or {}, config["trainer"]


def model_settings(model: str, dataset: str | None = None) -> dict:
    """`{"params": model.params, "trainer": trainer}` exactly as `ganad-bench model=<model> [dataset=...]`
    composes them (without a dataset: the model's settings over the trainer defaults)."""
    params, trainer = copy.deepcopy(_model_settings(model, dataset))
    return {"params": params, "trainer": trainer}


def to_container(cfg: DictConfig) -> dict:
    """The fully resolved config as plain Python; a broken interpolation is a ConfigError."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise ConfigError(f"invalid config: {message} (check the keys named on the command line)") from None

"""Config helpers shared by the CLI and `run`: resolvers, and the resolved plain-dict form."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganad_bench.errors import ConfigError


def _first_set(*values):
    """`${first_set:a,b}`: the first value that is not null (oc.select keeps an explicit null)."""
    return next((value for value in values if value is not None), None)


if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver("first_set", _first_set)


def to_container(cfg: DictConfig) -> dict:
    """The fully resolved config as plain Python; a broken interpolation is a ConfigError."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise ConfigError(f"invalid config: {message} (check the keys named on the command line)") from None

"""Name -> detector class, filled by the `@register` decorator in each model file."""

from __future__ import annotations

from ganad_bench.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(name: str):
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"detector '{name}' registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_detectors() -> list[str]:
    import ganad_bench.models  # noqa: F401  (imports every model file)

    return sorted(_REGISTRY)


def create_detector(name: str, seed: int = 0, trainer: dict | None = None, checkpoint_dir=None, **params):
    """A fresh detector, e.g. `create_detector("iforest").fit(x).score_samples(x)`.

    Deep detectors (class attribute `uses_trainer = True`) also receive the `trainer` config group and
    the folder for their per-epoch checkpoints; the classic ones take their parameters only."""
    names = available_detectors()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}': choose one of {', '.join(names)}")
    cls = _REGISTRY[name]
    if getattr(cls, "uses_trainer", False):
        params.update(trainer=dict(trainer or {}), checkpoint_dir=checkpoint_dir)
    try:
        return cls(seed=seed, **params)
    except TypeError as err:
        raise ConfigError(f"model {name}: {err} (check the model.* keys)") from None

"""The `trainer` config group as typed, checked fields (`TrainerConfig`), apart from the engine that reads
them: checking a run's settings (`config.check_run_config`) imports no torch, so a bad value is answered in
about a second."""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import math

from ganad_bench.config import typed, unknown_setting
from ganad_bench.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
# the real batch of the generator-side phases: the discriminators' own, or one of a second permutation
GENERATOR_BATCHES = ("same", "reshuffled")


@dataclasses.dataclass
class TrainerConfig:
    """The `trainer` config group as typed fields. The values are declared once, in
    conf/trainer/default.yaml (with what each key does) and the models' configs over it; `from_dict` fills
    the keys a caller leaves out from that file. Unknown keys are a `ConfigError`."""

    device: str
    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    lr_d: float | None
    weight_decay: float
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    ema_decay: float | None
    ema_warmup: bool
    early_stopping_patience: int | None
    early_stopping_min_delta: float
    early_stopping_restore_best: bool
    compile: bool
    bf16: bool
    tf32: bool
    checkpoint_every_epoch: bool
    checkpoint_interval: int
    checkpoint_seconds: float
    score_batch_size: int
    nan_check_every: int
    progress: bool
    curve_every: int | None
    generator_batch: str

    @classmethod
    def field_types(cls) -> dict[str, str]:
        """Each key's annotation as written ("int", "float | None"): what its values are read as."""
        return {field.name: field.type for field in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict | None) -> TrainerConfig:
        values = {**trainer_defaults(), **dict(values or {})}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            # the command line's message, with its closest setting (`create_detector(trainer={"epoch": 3})`)
            raise ConfigError(unknown_setting(", ".join(f"trainer.{key}" for key in unknown), "trainer", names))
        types = cls.field_types()
        config = cls(**{name: typed(f"trainer.{name}", value, types[name]) for name, value in values.items()})
        config.validate()
        return config

    def validate(self) -> None:
        """Every number finite (`trainer.lr=inf` would only diverge), then the ranges of the typed values
        (`TRAINER_RULES`): a one-line ConfigError, never a failed run."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, tuple) else
                                                                             (value,))):
                raise ConfigError(f"trainer.{field.name} must be a finite number, got {value}")
        for name, holds, rule in TRAINER_RULES:
            value = getattr(self, name)
            if not holds(value):
                raise ConfigError(f"trainer.{name} must be {rule}, got {value}")
        check_device_name(self.device)  # whether the device is there is the engine's check (`resolve_device`)


def check_device_name(name: str, setting: str = "trainer.device") -> tuple[str, str]:
    """A device's name as written (`cuda:1`; null or empty is auto), checked without torch: a known kind and a
    whole number, if any; returns (kind, number or ""). `setting` is how the user chose it, as the error names
    it."""
    name = str(name or "auto")
    base, colon, index = name.partition(":")
    chosen = as_given(setting, name)
    if base not in DEVICES:
        raise ConfigError(f"unknown device {chosen}: choose one of {', '.join(DEVICES)}")
    # torch.device("cuda:x") raises, and cuda:5 on a one-GPU machine fails the run at its first tensor
    if colon and base == "auto":
        raise ConfigError(f"{chosen}: auto picks the device and takes no number; give {as_given(setting, 'auto')}, "
                          f"or a device such as {as_given(setting, 'cuda:0')}")
    if colon and not index.isdigit():
        raise ConfigError(f"{chosen}: a device number is a whole number >= 0, e.g. {as_given(setting, base + ':0')}")
    return base, index


def as_given(setting: str, value) -> str:
    """A setting with its value as the user writes it: a config key takes key=value, a flag --flag value."""
    return f"{setting}{'=' if setting.startswith('trainer.') else ' '}{value}"


# trainer key, test, the rule as the error states it (`None` passes where the key may be null)
TRAINER_RULES = (
    ("epochs", lambda v: v >= 0, ">= 0"),
    ("batch_size", lambda v: v >= 1, ">= 1"),
    ("lr", lambda v: v > 0, "> 0"),
    ("lr_d", lambda v: v is None or v > 0, "> 0 or null"),
    ("betas", lambda v: all(0.0 <= beta < 1.0 for beta in v), "two numbers in [0, 1)"),
    ("weight_decay", lambda v: v >= 0, ">= 0"),
    ("lr_milestones", lambda v: all(epoch >= 1 for epoch in v), "a list of epochs >= 1"),
    ("lr_gamma", lambda v: v > 0, "> 0"),
    ("ema_decay", lambda v: v is None or 0.0 <= v < 1.0, "in [0, 1) or null"),
    ("early_stopping_patience", lambda v: v is None or v >= 1, ">= 1 or null"),
    ("early_stopping_min_delta", lambda v: v >= 0, ">= 0"),
    ("checkpoint_interval", lambda v: v >= 1, ">= 1"),
    ("checkpoint_seconds", lambda v: v >= 0, ">= 0"),
    ("score_batch_size", lambda v: v >= 1, ">= 1"),
    ("nan_check_every", lambda v: v >= 1, ">= 1"),
    ("curve_every", lambda v: v is None or v >= 1, ">= 1 or null"),
    ("generator_batch", lambda v: v in GENERATOR_BATCHES, f"one of {', '.join(GENERATOR_BATCHES)}"),
)


@functools.lru_cache(maxsize=1)
def _trainer_defaults() -> dict:
    from omegaconf import OmegaConf

    path = importlib.resources.files("ganad_bench.conf") / "trainer" / "default.yaml"
    return OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=True)


def trainer_defaults() -> dict:
    """conf/trainer/default.yaml as a dict (a fresh copy)."""
    return copy.deepcopy(_trainer_defaults())

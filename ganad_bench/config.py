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
import difflib
import numbers
import re
from functools import cache

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganad_bench.errors import ConfigError, first_line

PARAMS_GROUP = "model_params"
# trainer keys that never change what is trained or scored (kept out of a run's identity, its table variant
# and the checkpoint fingerprint)
BOOKKEEPING_TRAINER_KEYS = ("progress", "score_batch_size", "nan_check_every", "checkpoint_every_epoch",
                            "checkpoint_interval", "checkpoint_seconds", "curve_every")
# trainer keys added after runs were made: key -> the default every earlier run behaved as. At that default
# a key is kept out of a run's identity (its folder hash) and its checkpoint fingerprint, so that earlier
# runs keep their folders and resume, and rows from before it read as the default (`results.tables`)
ADDED_TRAINER_DEFAULTS = {"generator_batch": "same", "tf32": False}
# trainer keys that act only while early stopping does (`stops_early`): kept out of a run's identity, checkpoint
# fingerprint and table variant otherwise, so that the runs that never stop early keep their folders and cells
EARLY_STOPPING_ONLY_KEYS = ("early_stopping_restore_best",)
# model parameters added after runs were made, likewise: model name -> {parameter: the default every earlier run
# behaved as}; kept out of the folder hash and the checkpoint fingerprint at that default
ADDED_MODEL_PARAMS = {"dcae": {"init": "pytorch"}, "deep_svdd": {"init": "pytorch"},
                      "memgan": {"batchnorm_stats": "training", "encoder_loss": "min_max",
                                 "memory_init": "normal", "contrast_norm": None}}


def at_added_default(key: str, value, added: dict) -> bool:
    """Whether `key` is one of the `added` keys (key -> the default earlier runs had) set to that default:
    such a key stays out of a run's identity and checkpoint fingerprint, as earlier runs wrote them."""
    return key in added and value == added[key]


def stops_early(trainer: dict, protocol: dict | None = None) -> bool:
    """Whether early stopping can act in a run: a patience is set and (where the protocol is given) the protocol
    holds normal validation rows out."""
    if (trainer or {}).get("early_stopping_patience") is None:
        return False
    return protocol is None or float(protocol.get("val_fraction") or 0.0) > 0.0


def without_inert_trainer_keys(config: dict) -> dict:
    """`config` without the trainer keys that cannot act in its run (`EARLY_STOPPING_ONLY_KEYS` while early
    stopping is off; without a protocol, as in a checkpoint's fingerprint, the patience alone decides): what its
    identity, table variant and checkpoint fingerprint are made of."""
    trainer = config.get("trainer")
    if not isinstance(trainer, dict) or stops_early(trainer, config.get("protocol")):
        return config
    return {**config, "trainer": {k: v for k, v in trainer.items() if k not in EARLY_STOPPING_ONLY_KEYS}}


def annotation_kinds(annotation) -> list[str]:
    """The types an annotation names, as text, in its order: "float | None" -> ["float", "None"] (the text
    `from __future__ import annotations` keeps, or a type object, written as `inspect` writes it)."""
    import inspect

    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return [part.strip() for part in text.split("|")]


def typed(key: str, value, annotation):
    """`value` as the first type of an annotation (`annotation_kinds`: "int", "float | None", "float | str",
    "tuple[float, float]", "list[int] | None") that takes it; a one-line ConfigError naming `key` otherwise
    (`trainer.epochs=abc`, `model.params.n_memory=abc`). A type it does not know takes the value as it is."""
    kinds = annotation_kinds(annotation)
    if value is None and "None" in kinds:
        return None
    for kind in kinds:
        try:
            return _as_kind(value, kind)
        except (TypeError, ValueError, OverflowError):
            continue
    raise ConfigError(f"{key} must be {' or '.join(map(described_kind, kinds))}, got {value!r}")


def described_kind(kind: str) -> str:
    """An annotation's type in words: "float" -> "a number", "tuple[float, float]" -> "a list of 2 numbers",
    "tuple[int, ...]" -> "a list of integers"."""
    one = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string", "None": "null"}
    many = {"bool": "true / false values", "int": "integers", "float": "numbers", "str": "strings"}
    if kind in one:
        return one[kind]
    items = re.fullmatch(r"(?:tuple|list)\[(.+)\]", kind)
    parts = [part.strip() for part in items.group(1).split(",")] if items else []
    if len(parts) == 2 and parts[1] == "..." or kind.startswith("list[") and len(parts) == 1:
        return f"a list of {many.get(parts[0], parts[0])}"
    if parts and len(set(parts)) == 1 and parts[0] in many:
        return f"a list of {len(parts)} {many[parts[0]]}"
    return f"a list ({kind})"


def _as_kind(value, kind: str):
    if kind == "None":
        raise ValueError
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError
    if kind == "int":
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if kind == "str":
        return str(value)
    if kind.startswith(("tuple[", "list[")):  # tuple[float, float] / tuple[int, ...] / list[int]
        if isinstance(value, (str, bytes)) or value is None:
            raise ValueError
        item = "float" if "float" in kind else "int"
        items = [_as_kind(v, item) for v in value]
        if kind == "tuple[float, float]" and len(items) != 2:
            raise ValueError
        return tuple(items) if kind.startswith("tuple[") else items
    return value


def _first_set(*values):
    """`${first_set:a,b}`: the first value that is not null (oc.select keeps an explicit null)."""
    return next((value for value in values if value is not None), None)


def _safe_name(value) -> str:
    """`${safe_name:...}`: a config value as one harmless path component (Hydra's run and job folders are
    named from the config before any check has run: `seed=/../../x` must not name a folder elsewhere)."""
    text = re.sub(r"[^A-Za-z0-9_.=+-]", "_", str(value)).lstrip(".")
    return text[:64] or "_"


if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver("first_set", _first_set)
if not OmegaConf.has_resolver("safe_name"):
    OmegaConf.register_new_resolver("safe_name", _safe_name)


def _plain(value):
    """A default argument as a config value (tuples become lists)."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def register_configs() -> None:
    """Store every detector's constructor defaults as the Hydra config `model_params/<model>`, read from the
    method files' source (`models.kit.catalog`): composing imports no method file, nor torch."""
    from hydra.core.config_store import ConfigStore

    from ganad_bench.models.kit.catalog import catalog

    store = ConfigStore.instance()
    for name, entry in catalog().items():
        store.store(group=PARAMS_GROUP, name=name, node={key: _plain(value) for key, value in entry.defaults.items()})


def compose_config(overrides: list[str] | tuple[str, ...] = (), with_hydra: bool = False) -> DictConfig:
    """The app's config with command-line style overrides (inside a running Hydra app or an
    `initialize_config_module` block too); `with_hydra`: with Hydra's own config (`hydra/launcher=...`)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=with_hydra)
        with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(composition_error(err, overrides)) from None
    except (AssertionError, ValueError) as err:  # OmegaConf's: a key set under a node that is null
        # (hydra.sweeper.params), a list item named by a word (trainer.betas.x=1: int('x') fails)
        lists = " (a list is set whole: trainer.betas=[0.5,0.999])" if isinstance(err, ValueError) else ""
        raise ConfigError(f"the overrides do not compose ({first_line(err)}): check the keys they set exist, e.g. "
                          f"with --cfg job / --cfg hydra{lists}") from None


def composition_error(err: Exception, overrides=None) -> str:
    """Hydra's multi-line composition errors as one line that keeps the fix (e.g. "Either remove + prefix");
    `overrides`, those that failed to compose, let a mistyped key be told against the settings of the model,
    protocol, ... they chose."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    key = re.match(r"Could not override '([^']+)'", first)
    owner = re.search(r"Key '[^']+' not in '(\w+)'", f"{err} {err.__cause__}")  # OmegaConf's error is the cause
    if key and key.group(1).startswith("hydra.") and owner:  # "+hydra.launcher.x" would not help: nothing reads it
        return f"{key.group(1)}: not a setting of {owner.group(1)} (check the spelling, or the launcher / sweeper " \
               f"that has it: hydra/launcher=..., hydra/sweeper=...)"
    if key:  # Hydra's "+key=..." would add a key nothing reads (a model's constructor refuses it)
        return unknown_override(key.group(1), overrides)
    hints = [line for line in lines[1:] if line.startswith(("To append", "Either remove", "Available options"))]
    if first.startswith("Available options") or any(h.startswith("Available options") for h in hints):
        options = lines[lines.index(next(h for h in lines if h.startswith("Available options"))) + 1:]
        options = [o for o in options if not o.startswith(("Config search path", "provider="))]
        missing = re.search(r"Could not find '(.+)/([^'/]+)'", first)  # a group's choice: said as `model=nope` is
        if missing:
            return f"unknown {missing.group(1)} '{missing.group(2)}': choose one of {', '.join(options)}"
        return f"{first} (choose one of {', '.join(options)})"
    if "grammar" in str(err) or type(err).__name__ == "OverrideParseException":
        key, _, value = first.split(": ", 1)[-1].partition("=")
        # Hydra's grammar takes letters, digits, spaces and its own symbols unquoted, not '#' or a letter like ü
        if re.search(r"[^\w\-+./\\:$%*@?|~,=()\[\]{}'\" ]|[^\x00-\x7f]", value):
            return f"cannot parse the override ({first}): a value with characters such as # or ü goes in quotes, " \
                   f"e.g. \"{key}='{value}'\""
        return f"cannot parse the override ({first}): write key=value, a sweep as key=a,b,c or 'key=range(10)'"
    if first.startswith("Error merging override") and err.__cause__ is not None:  # what was wrong is the cause
        return f"{first}: {first_line(err.__cause__)} (check the keys it sets exist, e.g. with --cfg job)"
    return " ".join([first, *hints[:1]])


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
        message = first_line(err)
        hint = "check the keys named on the command line"
        if "Interpolation key 'dataset." in message:  # protocol=tabular on an image dataset, ...
            hint = "the protocol reads a dataset setting this dataset does not have: pick the dataset's own protocol"
        raise ConfigError(f"invalid config: {message} ({hint})") from None


# protocol settings that are shares of rows (an integer written for one, say 0, is that float)
PROTOCOL_FRACTIONS = ("train_fraction", "contamination", "val_fraction", "anomaly_fraction")
# the config groups a run config holds besides the primary config's own keys (conf/config.yaml)
RUN_GROUPS = ("trainer", "model", "dataset", "protocol", "paths")


@cache
def declared_keys(group: str | None = None) -> frozenset[str]:
    """The keys the shipped configs declare: the run config's top level (group None: the primary config's own
    keys and `RUN_GROUPS`), or the union over `conf/<group>/*.yaml`. A key outside them that `+key=...`
    added is a typo, which would otherwise change nothing but the run's folder."""
    from importlib.resources import files

    conf = files("ganad_bench.conf")
    if group is None:
        primary = OmegaConf.create(conf.joinpath("config.yaml").read_text())
        return frozenset(key for key in primary if key not in ("defaults", "hydra")) | frozenset(RUN_GROUPS)
    keys = set()
    for entry in conf.joinpath(group).iterdir():
        if entry.name.endswith(".yaml"):
            keys |= {key for key in OmegaConf.create(entry.read_text()) if key != "defaults"}
    return frozenset(keys)


def check_known_keys(config: dict) -> None:
    """Every key of the run config is one its configs declare or its code reads (the trainer's and the
    model's parameters are checked where they are read); the protocol's keys are those it reads."""
    for group in ("", "model", "dataset", "paths", "protocol"):
        owner, keys = settings_of(config, group)
        unknown = sorted(set(config if group == "" else (config.get(group) or {})) - keys)
        if unknown:
            raise ConfigError(unknown_setting(", ".join(f"{group}.{key}".lstrip(".") for key in unknown), owner, keys))


def unknown_override(name: str, overrides=None) -> str:
    """The one line for an override of a key the composed config does not have (`trainer.epoch=2`,
    `model.params.latent_dm=3`, `protocol.val_frac=0.1`): composed without it, the config says whose setting it
    was meant to be (model alad's parameters, the tabular protocol's settings); else the shipped configs do."""
    if overrides is not None:
        rest = [token for token in overrides if token.lstrip("+~").partition("=")[0] != name]
        try:
            return unknown_setting(name, *settings_of(to_container(compose_config(rest)), name.rpartition(".")[0]))
        except (ConfigError, KeyError):  # the other overrides do not compose either: say what the configs have
            pass
    return unknown_setting(name)


def settings_of(config: dict, group: str) -> tuple[str, frozenset[str]]:
    """Whose keys live at `group` of a resolved run config ("" for its top level) and what they are: a key
    set there outside them is a typo. A dataset's are the union over the shipped datasets (image and tabular
    datasets differ), a model's parameters its constructor's, a protocol's those it reads. KeyError for a
    `group` that holds no settings (`seed.x`)."""
    from ganad_bench.data.protocols import PROTOCOL_KEYS

    if group == "":
        return "a run config", declared_keys()
    if group == "model":
        return "model", frozenset(("name", "params"))
    if group == "model.params":
        return f"model {config['model']['name']}", frozenset(config["model"].get("params") or {})
    if group == "protocol":
        protocol = config.get("protocol") or {}
        name = protocol.get("name")  # one unknown here is refused where it is chosen: its keys pass meanwhile
        return f"the {name} protocol", frozenset(("name", *PROTOCOL_KEYS.get(name, protocol)))
    if group in RUN_GROUPS:
        return group, declared_keys(group)
    raise KeyError(group)


def unknown_setting(names: str, owner: str | None = None, keys=None) -> str:
    """The one line for a setting the configs do not have (`trainer.epoch=2`, `+protocol.test_fraction=0.3`):
    the closest of its owner's settings and all of them, from the shipped configs when not given; a key under a
    value (`seed.x`) has none."""
    if owner is None:
        group = names.rpartition(".")[0]
        if group and (group not in RUN_GROUPS or group == "model"):
            return f"{names}: not a setting (check the spelling; `ganad-bench --cfg job` prints them all)"
        owner, keys = group or "a run config", declared_keys(group or None)
    close = [] if ", " in names else difflib.get_close_matches(names.rpartition(".")[2], keys, n=1)
    fix = f"did you mean {close[0]}? else remove it" if close else "check the spelling, or remove it"
    return f"{names}: not a setting of {owner} ({fix}); its settings: {', '.join(sorted(keys))}"


def whole_numbers_as_ints(values: dict, annotations: dict) -> None:
    """Hydra reads `trainer.epochs=1e3` as the float 1000.0: a whole number given for a setting whose annotation
    (`annotations`: setting -> its annotation, a type or its text) is an integer is written back as that integer,
    so that it and `trainer.epochs=1000` are one run (one folder, one config hash) and the detector gets the int
    it checks for."""
    for key, value in values.items():
        if key not in annotations or not isinstance(value, float) or not value.is_integer():
            continue
        kinds = annotation_kinds(annotations[key])
        if "int" in kinds and "float" not in kinds:  # `int | float` takes 1.0 as a fraction, not as 1
            values[key] = int(value)


# the largest seed every generator a run seeds takes: NumPy's RandomState and scikit-learn's `random_state`
# stop at 2**32 - 1 (torch at 2**64 - 1), so a larger one is refused here rather than failing the run
SEED_MAX = 2**32 - 1
SEED_RULE = f"an integer from 0 to {SEED_MAX} (2**32 - 1)"


def is_seed(value) -> bool:
    """An integer in [0, SEED_MAX] (a numpy integer too; not a bool, not a float): what every random generator
    a run seeds (NumPy's, scikit-learn's, torch's) takes."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value <= SEED_MAX


def seed_host_generators(seed: int) -> None:
    """Seed Python's and NumPy's global generators from a run seed: all a classic run seeds (its estimator takes
    the seed itself); `training.device.seed_everything` seeds torch's too."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)


# the largest integer a setting may hold: NumPy, torch and scikit-learn keep an integer setting in a C long, and
# a larger one (`model.params.n_estimators=1e19`) failed the run ("Overflow when unpacking long long")
SETTING_INT_MAX = 2**63 - 1


def check_integer_sizes(config: dict) -> None:
    """Every integer among the run's settings (model.params, trainer, protocol, dataset, lists included) fits
    in SETTING_INT_MAX; a larger one is a one-line ConfigError naming it, before the run folder is made."""
    def walk(name: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(name, item)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(value) > SETTING_INT_MAX:
            raise ConfigError(f"{name}={value} is larger than any integer a run can hold (2**63 - 1): give a "
                              f"smaller one")

    for group in ("dataset", "protocol", "trainer"):
        walk(group, config.get(group) or {})
    walk("model.params", config.get("model", {}).get("params") or {})


def check_run_config(config: dict) -> dict:
    """A resolved run config checked and made canonical before anything is written: every value that names
    a folder is a known name or a non-negative integer, the normal class is an index (a class name and its
    index are one run), settings a protocol does not use are rejected or cleared. Returns a new dict;
    a bad value is a one-line ConfigError that names the fix."""
    from ganad_bench.data.protocols import PROTOCOLS, check_protocol_settings
    from ganad_bench.data.registry import source_spec
    from ganad_bench.models.kit.catalog import catalog_entry
    from ganad_bench.training.settings import TrainerConfig

    config = copy.deepcopy(config)
    check_known_keys(config)
    seed = config.get("seed")
    if not is_seed(seed):
        raise ConfigError(f"seed must be {SEED_RULE}, got {seed!r}: e.g. seed=0, or a sweep seed=0,1,2")
    for key in ("force", "plots", "allow_test_selection"):
        if not isinstance(config.get(key, False), bool):
            raise ConfigError(f"{key} must be true or false, got {config.get(key)!r}")
    check_reporting(config)
    detector = catalog_entry(str(config["model"]["name"]))  # its source: checking imports no torch
    whole_numbers_as_ints(config.get("model", {}).get("params") or {}, detector.annotations)
    whole_numbers_as_ints(config.get("trainer") or {}, TrainerConfig.field_types())
    check_integer_sizes(config)
    TrainerConfig.from_dict(config.get("trainer"))  # a bad trainer value fails before the run folder is made
    dataset, protocol = config["dataset"], config["protocol"]
    source_spec(str(dataset["name"]), dataset.get("source"))
    if protocol.get("name") not in PROTOCOLS:
        raise ConfigError(f"unknown protocol '{protocol.get('name')}': choose one of {', '.join(PROTOCOLS)}")
    for key in PROTOCOL_FRACTIONS:  # protocol.val_fraction=0 and the YAML's 0.0 are one setting, one run folder
        if type(protocol.get(key)) is int:
            protocol[key] = float(protocol[key])
    check_protocol_settings(protocol)  # its shares and choices, before the data load
    check_protocol_classes(dataset, protocol)
    return config


def check_protocol_classes(dataset: dict, protocol: dict) -> None:
    """The classes a protocol singles out, in place: `dataset.normal_class` (one_class, alad_image) or
    `protocol.anomaly_class` (leave_one_class_out) resolved to an index, a class name and its index being one
    run; `dataset.normal_class` cleared where every class is normal, and rejected where the data have none."""
    from ganad_bench.data.dataset import class_index
    from ganad_bench.data.image_sources import CLASS_NAMES
    from ganad_bench.data.registry import source_spec

    names = CLASS_NAMES.get(dataset["name"])
    if protocol["name"] in ("one_class", "alad_image", "leave_one_class_out") and names is None:
        raise ConfigError(f"protocol {protocol['name']} needs an image dataset with classes and {dataset['name']} "
                          f"is tabular: use protocol=tabular")
    if protocol["name"] == "cross_dataset":
        if not protocol.get("anomaly_dataset"):
            raise ConfigError("protocol cross_dataset needs protocol.anomaly_dataset, the dataset whose test images "
                              "are the anomalies: e.g. protocol.anomaly_dataset=mnist")
        source_spec(str(protocol["anomaly_dataset"]), protocol.get("anomaly_source"))
        dataset["normal_class"] = None  # every class is normal
    elif protocol["name"] == "leave_one_class_out":
        protocol["anomaly_class"] = class_index(names, protocol.get("anomaly_class"), dataset["name"],
                                                "protocol.anomaly_class")
        dataset["normal_class"] = None  # every other class is normal
    elif protocol["name"] in ("one_class", "alad_image"):
        dataset["normal_class"] = class_index(names, dataset.get("normal_class"), dataset["name"])
    elif dataset.get("normal_class") is not None:
        raise ConfigError(f"dataset.normal_class={dataset['normal_class']!r}: {dataset['name']} under the "
                          f"{protocol['name']} protocol has no normal class; remove it (dataset.normal_class=null)")


TEST_METRICS = ("auroc", "auprc", "f1", "precision", "recall")
LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_reporting(config: dict) -> None:
    """`optimize` and `logger`: known values; test metrics only when test selection is declared."""
    import importlib.util

    optimize = config.get("optimize") or "val_loss"
    if optimize != "val_loss" and optimize not in TEST_METRICS:
        raise ConfigError(f"optimize={optimize!r}: choose val_loss or one of {', '.join(TEST_METRICS)}")
    if optimize in TEST_METRICS and not config.get("allow_test_selection"):
        raise ConfigError(f"optimize={optimize} selects settings on test labels: add allow_test_selection=true to "
                          f"do it anyway (recorded in every row), or keep optimize=val_loss")
    logger = config.get("logger")
    if logger is not None:
        if logger not in LOGGERS:
            raise ConfigError(f"logger={logger!r}: choose null, {', '.join(LOGGERS)}")
        module, extra = LOGGERS[logger]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"logger={logger} needs the {module} package: pip install 'ganad_bench[{extra}]'")

"""Thin entry points: `ganad-bench` (a Hydra app around `run.run`) and `ganad-bench-table`.

`ganad-bench` never ends in a traceback for a user's mistake or an interrupt: bad overrides are checked
before Hydra starts (one line naming the fix, exit 2), a bad value of one job of a sweep is recorded for
that job while the others go on, Ctrl-C at any moment exits 130, and the exit status (1 when any run did
not finish) is read from the outcomes the jobs wrote (`outcomes.py`), so it is right whichever Hydra
launcher ran them. Heavy modules (Hydra, torch) are imported inside the functions.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shlex
import signal
import sys
import uuid
from importlib.resources import files
from pathlib import Path

import numpy as np

from ganad_bench.console import error_exit
from ganad_bench.errors import ConfigError, GanadError, fault_text, first_line

# the name a table's files take in a folder: <folder>/table.csv, <folder>/table_<paper>_<table>.md, ...
TABLE_FILES_NAME = "table"
CONFIG_GROUPS = ("model", "dataset", "protocol", "trainer", "paths", "experiment")
# hydra/launcher options that come from optional packages: `pip install 'ganad_bench[launchers]'`
LAUNCHER_PACKAGES = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
                     "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
                     "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")}


def config_dir() -> Path:
    return Path(str(files("ganad_bench.conf")))


def group_options(group: str, extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    """The options of a config group: the package's, and those of the folders the command adds."""
    folders = [folder / group for folder in (config_dir(), *extra_dirs)]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def added_config_dirs(argv: list[str]) -> tuple[Path, ...]:
    """The folders a command adds to Hydra's config search path, where one keeps configs of one's own
    (DIR/model/mine.yaml, DIR/experiment/mine.yaml): `--config-dir DIR` and the entries of
    `hydra.searchpath=[file://DIR,pkg://package.conf]`."""
    try:
        given = hydra_parser().parse_args(argv).config_dir
    except _Refused:  # check_hydra_flags answers it
        given = None
    entries = [given] if given else []
    for token in argv:
        if token.lstrip("+~").startswith("hydra.searchpath="):
            value = parsed_override(token).value()
            entries += [str(entry) for entry in (value if isinstance(value, list) else [value])]
    folders = []
    for entry in entries:
        scheme, sep, rest = entry.partition("://")
        try:
            folder = Path(str(files(rest.replace("/", ".")))) if sep and scheme == "pkg" else \
                Path(rest if sep else entry).expanduser().resolve()
        except ModuleNotFoundError:
            folder = None
        if folder is None or not folder.is_dir():  # Hydra: a warning, then its error or nothing at all
            setting = f"--config-dir {entry}" if entry == given else f"hydra.searchpath entry {entry}"
            raise ConfigError(f"{setting}: no such folder: give a folder of configs (DIR/<group>/<name>.yaml)")
        folders.append(folder)
    return tuple(folders)


def search_path_overrides(argv: list[str]) -> list[str]:
    """The override that lets a composition of the command's config (its checks before Hydra runs) find the
    folders it adds (`added_config_dirs`), as Hydra's own composition will."""
    def quoted(folder: Path) -> str:  # Hydra reads a file:// path as written (no %20): quoted, any name parses
        return "'file://" + str(folder).replace("\\", "\\\\").replace("'", "\\'") + "'"

    folders = added_config_dirs(argv)
    return [f"hydra.searchpath=[{','.join(quoted(folder) for folder in folders)}]"] if folders else []


def check_group_choices(argv: list[str]) -> None:
    """Reject an unknown `model=`/`dataset=`/... choice, or a launcher whose package is missing, with a
    one-line message before Hydra starts. The folders the command adds (`added_config_dirs`, each checked to
    be one) add their options."""
    folders = (config_dir(), *added_config_dirs(argv))
    for token in argv:
        key, sep, value = token.lstrip("+~").partition("=")
        if key == "hydra/launcher" and value in LAUNCHER_PACKAGES:
            module, package = LAUNCHER_PACKAGES[value]
            if not _has_module(module):
                raise ConfigError(f"hydra/launcher={value} needs the {package} package: "
                                  f"pip install 'ganad_bench[launchers]'")
        if not sep or key not in CONFIG_GROUPS or "(" in value or value in ("", "null"):
            continue
        options = group_options(key, folders[1:])
        for choice in value.split(","):
            if choice not in options and not any((folder / key / f"{choice}.yaml").is_file() for folder in folders):
                raise ConfigError(f"unknown {key} '{choice}': choose one of {', '.join(options)}")


def owns_help(argv: list[str]) -> bool:
    """`--help` / `-h` answered by `help_text`: Hydra's own help lists every group by composing the config
    repository once per group (about 110 deep copies: 4-6 s here) and shows groups no one picks by hand. A
    help template of one's own (`hydra/help=...`, `hydra.help.*`) is Hydra's to render."""
    return any(flag in argv for flag in ("--help", "-h")) and not any(
        token.lstrip("+~").startswith(("hydra.help", "hydra/help")) for token in argv)


def help_text(extra_dirs: tuple[Path, ...] = ()) -> str:
    """The help of conf/hydra/help/ganad.yaml (header, template, footer), its `$APP_CONFIG_GROUPS` being the
    groups one picks with group=option (`CONFIG_GROUPS` and their subgroups, with the options of the folders
    the command adds) and those the config chooses from other choices (the defaults list's `${...}` entries)."""
    import string

    from omegaconf import OmegaConf

    help_config = OmegaConf.create({"hydra": {"help": OmegaConf.load(config_dir() / "hydra" / "help" / "ganad.yaml")}})
    chosen = {}  # group -> (the option the primary config derives from other choices, whether it is optional)
    for entry in OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml"))["defaults"]:
        if isinstance(entry, dict):
            chosen.update({key.removeprefix("optional ").strip(): (value, key.startswith("optional "))
                           for key, value in entry.items() if isinstance(value, str) and "${" in value})
    automatic = {f"{group}/{value.split('/')[0]}" for group, (value, _) in chosen.items() if "/" in value}
    lines = []
    for group in CONFIG_GROUPS:
        folders = [folder / group for folder in (config_dir(), *extra_dirs) if (folder / group).is_dir()]
        nested = sorted({p.name for folder in folders for p in folder.iterdir() if p.is_dir()} - {"__pycache__"})
        for name in [group, *(f"{group}/{sub}" for sub in nested)]:
            options = group_options(name, extra_dirs)
            if options and name not in automatic:  # protocol/dataset_default: filled in from the dataset
                lines.append(f"{name}: {', '.join(options)}")
    lines.append("set from those choices unless given:")
    lines += [f"  {group}={value}{' (where that file exists)' if optional else ''}"
              for group, (value, optional) in chosen.items()]
    template = OmegaConf.to_container(help_config, resolve=True)["hydra"]["help"]["template"]
    return string.Template(template).substitute(APP_CONFIG_GROUPS="\n".join(lines) + "\n")


def _has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def parsed_overrides(argv: list[str]) -> list[tuple[str, object]]:
    """(text, Hydra's parsed override) of each config override among the command's arguments (not Hydra's
    flags, not `hydra...` settings); a grammar error is a one-line ConfigError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    tokens = [t for t in argv if "=" in t and not t.startswith("-") and not t.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(tokens)
    except Exception as err:  # Hydra's grammar errors
        from ganad_bench.config import composition_error

        raise ConfigError(composition_error(err)) from None
    return list(zip(tokens, parsed, strict=True))


def config_overrides(argv: list[str]) -> list[str]:
    """The config overrides among the command's arguments, each sweep (`a,b,c`, `range(...)`, a group's
    `glob(...)`) reduced to its first value; a sweeper's `interval(...)` is left out."""
    from hydra.core.override_parser.types import Glob

    overrides = []
    for token, override in parsed_overrides(argv):
        if not override.is_sweep_override():
            overrides.append(token)
        elif isinstance(override.value(), Glob) or override.is_choice_sweep() or override.is_range_sweep():
            first = next(iter(sweep_values(override, argv)), None)
            if first is not None:
                overrides.append(f"{override.get_key_element()}={first}")
        # a sweeper's interval(...) cannot be enumerated here: the sweeper composes it
    return [*overrides, *search_path_overrides(argv)]


def sweep_values(override, argv: list[str]):
    """The values of a command-line sweep as Hydra passes them to the jobs, lazily (`range(10**6)` is not
    listed): `a,b`, `range(...)`, or a config group's options that `glob(...)` picks (`model=glob(ds*)`: Hydra
    needs its config loader to list them; a glob of a setting, not a group, is a one-line ConfigError)."""
    from hydra.core.override_parser.types import Glob

    value = override.value()
    if not isinstance(value, Glob):
        return override.sweep_string_iterator()
    key = override.get_key_element()
    options = group_options(key, added_config_dirs(argv))
    if not options:
        raise ConfigError(f"{key}=glob(...) picks options of a config group (model=glob(ds*)), and {key} is a "
                          f"setting: give its values, e.g. {key}=1,2,3 or '{key}=range(10)'")
    return iter(value.filter(options))


# Hydra's flags that choose what the command does: only one may be given
HYDRA_MODE_FLAGS = {"-m": "multirun", "--multirun": "multirun", "-c": "cfg", "--cfg": "cfg", "-i": "info",
                    "--info": "info", "-sc": "shell-completion", "--shell-completion": "shell-completion",
                    "-r": "run", "--run": "run"}


def check_before_hydra(argv: list[str]) -> None:
    """What Hydra would report in several lines (or after creating folders), checked first: the overrides
    compose, and the output folder can be written."""
    from ganad_bench.config import check_run_config, compose_config, to_container

    modes = [flag for flag in argv if flag in HYDRA_MODE_FLAGS]
    if len({HYDRA_MODE_FLAGS[flag] for flag in modes}) > 1:
        raise ConfigError(f"{' and '.join(modes)} cannot be combined: give one of them (e.g. drop -m to print one "
                          f"job's config with --cfg job)")
    check_hydra_flags(argv)
    check_group_choices(argv)  # after the flags: --config-dir adds choices
    if any(flag in argv for flag in ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc")):
        return
    multirun = "-m" in argv or "--multirun" in argv
    if multirun:
        check_sweep_size(argv)
        check_swept_experiments(argv)
    else:
        check_no_sweep(argv)
    check_launcher_settings(argv)
    check_hydra_settings(argv)
    config = to_container(compose_config(config_overrides(argv)))
    if not multirun:  # a bad value of the one run is answered before Hydra starts and torch loads (a sweep's
        checked = check_run_config(config)  # jobs are checked one by one); the config --cfg prints is one the run
        printed = [argv[i + 1] for i, flag in enumerate(argv[:-1]) if HYDRA_MODE_FLAGS.get(flag) == "cfg"]
        if printed and printed[0] != "hydra":  # would take, its model parameters too: checked by the constructors
            from ganad_bench.models.kit.registry import build_detector  # (which the run calls before the data

            build_detector(checked["model"]["name"], int(checked["seed"]), checked["model"].get("params"),
                           checked["trainer"])  # loads), so a deep model's file loads torch: seconds, not a run
    check_search_objective(argv, config)
    output = output_folder(config["paths"])
    make_folder(f"paths.output_dir={output}", output)


class _Refused(Exception):
    """argparse's error, raised instead of printed with the usage block."""


def hydra_parser():
    """Hydra's own command-line parser, raising `_Refused` where argparse would print its usage and exit."""
    from hydra._internal.utils import get_args_parser

    def refuse(message: str) -> None:
        raise _Refused(message)

    parser = get_args_parser()
    parser.error = refuse
    return parser


def check_hydra_flags(argv: list[str]) -> None:
    """The command line parses as Hydra will parse it (with its parser): a misspelt or misplaced flag is a
    one-line ConfigError, where argparse printed Hydra's usage block before its error."""
    try:
        flags = hydra_parser().parse_args(argv)
    except _Refused as err:
        raise ConfigError(f"{err}{flags_hint(str(err), argv)} (see ganad-bench --help)") from None
    if flags.config_path or flags.config_name:  # Hydra would look for ganad-bench's own configs elsewhere
        raise ConfigError(f"{'--config-path' if flags.config_path else '--config-name'} replaces ganad-bench's "
                          f"primary config: keep your configs in a folder given with --config-dir DIR (e.g. "
                          f"DIR/experiment/mine.yaml, picked with experiment=mine)")


def flags_hint(message: str, argv: list[str]) -> str:
    """How to order a command line Hydra's parser refused, where an order exists that parses: overrides on
    both sides of a flag (`model=iforest -m seed=0,1`: argparse takes one run of them), or overrides after
    `--info`, whose optional word took the first of them."""
    flag = next((i for i, token in enumerate(argv) if token in ("--info", "-i")), None)
    if "argument --info/-i: invalid choice" in message and flag is not None:
        return f": put the overrides before it ({' '.join([*argv[:flag], *argv[flag + 1:], argv[flag]])}), or name " \
               f"what to show"
    if not message.startswith("unrecognized arguments:"):
        return ""
    try:
        overrides = list(hydra_parser().parse_intermixed_args(argv).overrides or [])
    except _Refused:
        return ""
    flags = list(argv)
    for token in overrides:
        flags.remove(token)
    return f": give Hydra's flags before the overrides ({' '.join([*flags, *overrides])})"


# the most jobs one command's sweep may expand to: Hydra lists every job in memory before the first runs, and
# 'seed=range(0,100000000)' (a typo away from range(0,10)) ended in a MemoryError traceback
SWEEP_JOBS_MAX = 100_000


def check_sweep_size(argv: list[str]) -> None:
    """The command line's sweeps (`a,b,c`, `range(...)`) expand to at most SWEEP_JOBS_MAX jobs together,
    counted without expanding them; a larger sweep is a one-line ConfigError naming its largest range."""
    import math

    from hydra.core.override_parser.types import Glob

    sizes = {}
    for token, override in parsed_overrides(argv):
        value = override.value()
        if isinstance(value, Glob):  # a group's options by name (`model=glob(ds*)`)
            sizes[token] = len(list(sweep_values(override, argv)))
        elif override.is_range_sweep() and value.step:
            sizes[token] = max(0, math.ceil((value.stop - value.start) / value.step))
        elif override.is_choice_sweep():
            sizes[token] = len(value.list)
    if math.prod(sizes.values()) > SWEEP_JOBS_MAX:
        largest = max(sizes, key=sizes.get)
        raise ConfigError(f"the sweep expands to {math.prod(sizes.values()):,} jobs ({largest}: {sizes[largest]:,} "
                          f"values), more than the {SWEEP_JOBS_MAX:,} one command takes: narrow it, e.g. "
                          f"'seed=range(10)'")


def with_multirun(argv: list[str]) -> str:
    """The command again with -m, all its flags and overrides kept (--config-dir DIR, paths.output_dir=...)."""
    return shlex.join(["ganad-bench", "-m", *argv])


def check_no_sweep(argv: list[str]) -> None:
    """A sweep (`seed=0,1`, `'seed=range(3)'`) in a command that runs one job: Hydra answered in several lines
    (three readings of `a,b`, then its HYDRA_FULL_ERROR hint)."""
    sweeps = [token for token, override in parsed_overrides(argv) if override.is_sweep_override()]
    if not sweeps:
        return
    one_value = "give one value (a list is key=[a,b], a text with commas 'a,b')"
    if any(HYDRA_MODE_FLAGS.get(flag) == "cfg" for flag in argv):  # it prints one job's config: -m cannot join
        raise ConfigError(f"{sweeps[0]} is a sweep, and the command shows one job: {one_value}")
    raise ConfigError(f"{sweeps[0]} is a sweep, and the command runs one job: add -m to run a job for each value "
                      f"({with_multirun(argv)}), or {one_value}")


def check_swept_experiments(argv: list[str]) -> None:
    """A multirun over several experiments (`experiment=tabular_baselines,energy_baselines`) runs only what the
    command sweeps: Hydra takes a multirun's sweep from the command's own config, not from each job's, so each
    experiment's own sweep (`seed=range(10)`) was dropped without a word, one job an experiment. Refused in one
    line unless the command sets every key those sweeps vary."""
    from ganad_bench.config import compose_config

    given = {token.lstrip("+~").partition("=")[0] for token in argv}
    for token, override in parsed_overrides(argv):
        if override.get_key_element() != "experiment" or not override.is_sweep_override():
            continue
        for name in sweep_values(override, argv):
            config = compose_config([f"experiment={name}", *search_path_overrides(argv)], with_hydra=True)
            dropped = [key for key in config.hydra.sweeper.get("params") or {} if key not in given]
            if dropped:
                raise ConfigError(f"{token}: each experiment's own sweep would be dropped ({name} sweeps "
                                  f"{', '.join(dropped)}; Hydra takes a multirun's sweep from the command, not from "
                                  f"its jobs): run one experiment a command (ganad-bench -m experiment={name} ...), "
                                  f"or set {', '.join(dropped)} on the command line")


def check_search_objective(argv: list[str], config: dict) -> None:
    """An Optuna search minimises the validation loss (`optimize=val_loss`, the default), which needs normal
    rows held out of training: without them every trial scores inf and the "best" trial is the first one."""
    if not any(token.lstrip("+~") == "hydra/sweeper=optuna" for token in argv):
        return
    if (config.get("optimize") or "val_loss") == "val_loss" and not float(config["protocol"].get("val_fraction")
                                                                          or 0) > 0:
        raise ConfigError("hydra/sweeper=optuna minimises the validation loss (optimize=val_loss), but "
                          f"protocol.val_fraction is {config['protocol'].get('val_fraction')}: no validation rows, "
                          "every trial would score inf: hold out normal rows, e.g. protocol.val_fraction=0.2")


def output_folder(paths: dict) -> Path:
    """`paths.output_dir`; it and `paths.results_dir` must name a folder: an empty one would put the rows in
    "/results" (`${paths.output_dir}/results`) and Hydra's folders in "/runs"."""
    if not str(paths["output_dir"]).strip():
        raise ConfigError("paths.output_dir is empty: give a folder, e.g. paths.output_dir=outputs (or . for this one)")
    if not str(paths["results_dir"]).strip():
        raise ConfigError("paths.results_dir is empty: give a folder, or leave it out (<paths.output_dir>/results)")
    return Path(str(paths["output_dir"])).expanduser()


def make_folder(setting: str, folder: Path) -> None:
    """Make `folder` (and its parents) for the setting that names it (`paths.output_dir=...`), or a one-line
    ConfigError: a file on its path, a folder that cannot be made or written, a disk without room for the
    first files (Hydra's own would end in its traceback)."""
    existing = next(f for f in (folder, *folder.parents) if f.exists())
    try:
        if not existing.is_dir():  # mkdir would say "File exists"
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {setting} ({err.strerror or err}): choose a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{setting} is not writable: choose a writable folder")
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder) as probe:  # gone when closed, whatever happens
            probe.write(bytes(1 << 16))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as err:
        raise ConfigError(f"cannot write into {setting} ({err.strerror or err}): free space there, or choose "
                          f"another folder") from None


def check_hydra_settings(argv: list[str]) -> None:
    """Hydra's own groups (`hydra/launcher=...`) and settings (`hydra.launcher.pack_size=5` of a launcher without
    it, a sweep of a Hydra setting) compose, and the folder the command's Hydra run or sweep writes
    (`hydra.run.dir` / `hydra.sweep.dir`) can be made: Hydra would answer the first in several lines and the
    second with a traceback."""
    from ganad_bench.config import compose_config

    folder_key = "hydra.sweep.dir" if any(HYDRA_MODE_FLAGS.get(a) == "multirun" for a in argv) else "hydra.run.dir"
    hydra_tokens = [token for token in argv if token.lstrip("+~").startswith(("hydra/", "hydra."))]
    folders = []
    for token in hydra_tokens:
        override, text = parsed_override(token), token.partition("=")[2]
        key = override.get_key_element()
        if override.is_sweep_override():  # composed, it would "require --multirun", even under -m
            raise ConfigError(f"{key} takes one value, got {text}: Hydra's own settings are not swept (give one)")
        if key == folder_key:
            value = override.value()  # as Hydra reads it: hydra.run.dir='a b' is "a b", quotes gone
            if not isinstance(value, str):
                raise ConfigError(f"{key} takes one folder, got {text}: give one (e.g. {key}=outputs/mine)")
            fixed = value.split("${")[0]  # before an interpolation (${now:...}): the folders up to its last "/"
            folders.append((f"{key}={text}", Path((fixed[:fixed.rfind("/") + 1] or ".") if "${" in value
                                                  else fixed or ".")))
    if hydra_tokens:
        compose_config(hydra_tokens, with_hydra=True)  # one line naming the choices or the fix
    for setting, folder in folders:
        make_folder(setting, folder)  # Hydra makes it next, whatever follows


# the groups whose settings a multirun's own config may lack: Hydra composes it with each swept group at its default
PER_JOB_GROUPS = ("model", "dataset", "protocol", "trainer")


def settings_per_job(argv: list[str]) -> list[str]:
    """A multirun's plain settings of the model, dataset, protocol or trainer as one-value sweeps
    (`model.params.rep_dim=8` -> `model.params.rep_dim=choice(8)`): each job's config gets them as before, and
    the multirun's own config, which Hydra composes first with every swept group at its default and the plain
    settings on it, does not. `-m model=dcae,memae model.params.rep_dim=8` failed there, in several lines, on the
    default model (RCGAN has no rep_dim), though every job composes. Left as they are: another sweeper's
    (Optuna takes a choice as a search dimension), null (Hydra sweeps no null), an interpolation (a sweep's
    values are re-quoted), a key the command also sweeps."""
    sweepers = [t.partition("=")[2] for t in argv if t.lstrip("+~").startswith("hydra/sweeper=")]
    if not any(HYDRA_MODE_FLAGS.get(a) == "multirun" for a in argv) or set(sweepers) - {"pack", "basic"}:
        return argv
    parsed = parsed_overrides(argv)
    swept = {override.get_key_element() for _, override in parsed if override.is_sweep_override()}
    per_job = {}
    for token, override in parsed:
        key = override.get_key_element()
        if token[0] not in "+~" and key.partition(".")[0] in PER_JOB_GROUPS and "." in key and key not in swept \
                and not override.is_sweep_override() and override.value() is not None and "${" not in token:
            per_job[token] = f"{key}=choice({token.partition('=')[2]})"
    return [per_job.get(token, token) for token in argv]


def unswept_experiment(argv: list[str]) -> str | None:
    """Without -m Hydra runs one job and drops the sweep of an experiment (`hydra.sweeper.params`): a user who
    forgot -m would wait for a run of the default settings instead. The warning, unless the command is not a
    plain run or sets every swept key itself (one cell of an experiment, on purpose)."""
    from ganad_bench.config import compose_config

    experiment = next((t.partition("=")[2] for t in argv if t.lstrip("+~").startswith("experiment=")), None)
    if experiment is None or any(flag in HYDRA_MODE_FLAGS for flag in argv):
        return None
    params = compose_config(config_overrides(argv), with_hydra=True).hydra.sweeper.get("params") or {}
    given = {token.lstrip("+~").partition("=")[0] for token in argv}
    unset = [key for key in params if key not in given]
    if not unset:
        return None
    return (f"experiment={experiment} sweeps {', '.join(unset)} only with -m ({with_multirun(argv)}): "
            f"this runs one job, at {'its default' if len(unset) == 1 else 'their defaults'}")


def parsed_override(token: str):
    """One override as Hydra parses it (its `.value()`: a string without its quotes, a sweep object, ...), or a
    one-line ConfigError for what Hydra cannot parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ganad_bench.config import composition_error

    try:
        return OverridesParser.create().parse_override(token)
    except Exception as err:  # Hydra's grammar errors
        raise ConfigError(composition_error(err)) from None


# the settings that name a folder: `~` in them is the home folder, as in a shell, which leaves it to the command
# in `paths.output_dir=~/runs` (not a variable's name) or inside quotes
FOLDER_SETTINGS = ("paths.output_dir", "paths.results_dir", "paths.data_dir", "paths.cache_dir", "hydra.run.dir",
                   "hydra.sweep.dir")


def expand_home(argv: list[str]) -> list[str]:
    """The command's arguments with `~` at the start of a folder setting expanded (quoted for Hydra, whose grammar
    refuses a bare `~`; not in a sweep of folders): else Hydra would make a folder named "~" in the current one
    for the runs' files while the folders' checks looked in the home folder."""
    expanded = []
    for token in argv:
        prefix = token[:len(token) - len(token.lstrip("+~"))]
        key, sep, text = token[len(prefix):].partition("=")
        value = text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text
        home = os.path.expanduser(value)
        if sep and key in FOLDER_SETTINGS and value.startswith("~") and home != value and not set("',\\") & set(home):
            token = f"{prefix}{key}='{home}'"
        expanded.append(token)
    return expanded


# the pack launcher's whole-number settings: (the smallest value, an example); n_jobs also takes -1 (every CPU
# core, as joblib reads it)
LAUNCHER_NUMBERS = {"pack_size": (1, 10), "n_jobs": (1, 2), "timeout_min": (1, 240), "gpus_per_node": (0, 1),
                    "cpus_per_task": (1, 1), "mem_gb": (1, 1)}


def check_launcher_settings(argv: list[str]) -> None:
    """The pack launcher's settings (`hydra.launcher.pack_size`, `n_jobs`, `executor`, ...): Hydra would report
    a bad one in several lines, n_jobs <= 0 would quietly mean 1, a missing sbatch would end in a traceback."""
    for token in argv:
        key, _, value = token.lstrip("+~").partition("=")
        name, value = key.removeprefix("hydra.launcher."), value.strip()
        if name == key:
            continue
        if name == "executor":
            check_executor(value)
        elif name in LAUNCHER_NUMBERS:
            smallest, example = LAUNCHER_NUMBERS[name]
            every_core = name == "n_jobs" and value == "-1"
            if not re.fullmatch(r"-?\d+", value) or (int(value) < smallest and not every_core):
                allowed = f"a whole number >= {smallest}" + (", or -1 for every CPU core" if name == "n_jobs" else "")
                raise ConfigError(f"{key} must be {allowed}, got {value!r}: e.g. {key}={example}")


def check_executor(value: str) -> None:
    """`hydra.launcher.executor`: a known one, whose tools are here."""
    import shutil

    from hydra_plugins.ganad_pack_launcher.pack_launcher import EXECUTORS

    if value not in EXECUTORS:
        raise ConfigError(f"hydra.launcher.executor={value!r}: choose one of {', '.join(EXECUTORS)}")
    if value != "local" and not _has_module("submitit"):
        raise ConfigError(f"hydra.launcher.executor={value} needs submitit: pip install 'ganad_bench[launchers]'")
    if value == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError("hydra.launcher.executor=slurm needs SLURM's sbatch on this machine: run the sweep on "
                          "the cluster's login node, or try it here with hydra.launcher.executor=submitit_local")


# the first job of this process to fail with each message (`ganad_job`): later jobs with the same one say so
# in one short line instead of repeating it
_first_job_with_error: dict[str, str] = {}


def ganad_job(cfg) -> float | None:
    """The Hydra task: one run. Module-level and undecorated, so launchers (joblib, submitit) pickle it by
    reference. A user error or a crash ends this job only: it is recorded in the job's outcome."""
    import logging
    import traceback

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from rich.markup import escape

    from ganad_bench.console import console
    from ganad_bench.outcomes import write_outcome
    from ganad_bench.run import run

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    single = hydra_cfg.mode == RunMode.RUN
    try:
        row = run(cfg, job_dir=str(job_dir))
    except GanadError as err:
        write_outcome(job_dir, {"status": "invalid", "error": str(err)})
        first = _first_job_with_error.setdefault(str(err), job_dir.name)
        if single or first == job_dir.name:
            stop = error_exit(str(err))
        else:  # the sweep's jobs fail alike (a missing data file): the message once, then one short line a job
            stop = error_exit(f"{job_dir.name}: the same as {first}'s above")
        if single:
            raise stop from None
        return None
    except Exception as err:  # a fault before the run could record it: this job failed, the sweep goes on
        logging.getLogger("ganad_bench").info("job failed:\n%s", traceback.format_exc())  # the log file only
        write_outcome(job_dir, {"status": "failed", "error": fault_text(err)})
        console.print(f"[bold red]failed:[/] {escape(fault_text(err))} (log: {job_dir})", soft_wrap=True)
        return None
    status = "skipped" if row.get("skipped") else row["status"]
    write_outcome(job_dir, {"status": status, "result_path": row.get("result_path"), "error": row.get("error")})
    console.print(summary_line(row), soft_wrap=True)
    return sweeper_objective(row, hydra_cfg)


def sweeper_objective(row: dict, hydra_cfg) -> float | None:
    """The value a hyperparameter sweeper (Optuna) optimises: the row's `objective` (`optimize`). A run that
    has none (failed, or no validation rows) gives +inf to a minimising search, -inf to a maximising one,
    so the search goes on and never picks it."""
    value = row.get("objective")
    if value is not None and value == value:  # not None, not NaN
        return float(value)
    if "optuna" not in str(hydra_cfg.sweeper.get("_target_", "")):
        return None
    maximise = str(hydra_cfg.sweeper.get("direction", "minimize")).lower().startswith("max")
    return float("-inf") if maximise else float("inf")


def hydra_app():
    import hydra

    return hydra.main(config_path="pkg://ganad_bench.conf", config_name="config", version_base=None)(ganad_job)


def summary_line(row: dict) -> str:
    """One concise line per run: what ran, the headline metric beside the published one, where it went."""
    from rich.markup import escape

    from ganad_bench.metrics import PER_CLASS_PREFIX
    from ganad_bench.results.published import lookup
    from ganad_bench.results.tables import flatten_config

    what = f"{row['model']} · {row['dataset']}"
    if row.get("normal_class") is not None:
        what += f" class {row['normal_class']}"
    what += f" · {row['protocol']} · seed {row['seed']}"
    if row.get("skipped"):
        from ganad_bench.provenance import code_version

        older = row.get("code_version") not in (None, code_version()["label"])
        note = f", by code version {row.get('code_version')}" if older else ""
        return f"[yellow]skip[/] {what}: already finished{note} (force=true reruns it) → {row['result_path']}"
    if row["status"] == "busy":
        return f"[yellow]busy[/] {what}: being trained by {row['holder']}; this command leaves it to that process"
    if row["status"] != "ok":
        return f"[bold red]{row['status']}[/] {what}: {escape(str(row.get('error', '')))} → {row['result_path']}"
    metrics = row["metrics"]
    headline = "f1" if "f1" in metrics else "auroc"
    names = [headline, *(name for name in ("auroc", "auprc") if name != headline)]
    parts = [f"{name.upper()} {metrics[name]:.4f}" for name in names if name in metrics]
    published = lookup(row["model"], row["dataset"], headline, row["protocol"], row.get("normal_class"),
                       anomaly_dataset=row.get("anomaly_dataset"), settings=flatten_config(row.get("config") or {}))
    if published:
        parts[0] += (f" [dim](published {published['reference']} {published['mean']:.4f}, "
                     f"Δ {metrics[headline] - published['mean']:+.4f})[/]")
    per_class = {k.removeprefix(PER_CLASS_PREFIX): v for k, v in metrics.items() if k.startswith(PER_CLASS_PREFIX)}
    if per_class:  # the anomalous class this detector tells apart worst (`ganad-bench-table --by-anomaly-class`)
        weakest = min(per_class, key=per_class.get)
        parts.append(f"weakest against class {escape(weakest)}: AUROC {per_class[weakest]:.4f}")
    members = int(row.get("pack_members") or 1)
    packed = f" (a pack of {members})" if members > 1 else ""  # the pack's wall time, which its members share
    return (f"[green]ok[/] {what}: {' · '.join(parts)} · {row['timings']['total_s']:.1f} s{packed} → "
            f"{row['result_path']}")


def main() -> None:
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        code = _main(sys.argv[1:])
    except BrokenPipeError:  # `ganad-bench --help | head`: the reader has gone, and so has the traceback's reader
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor may the exit's flush raise again
        code = 1
    raise SystemExit(code)


# what an interrupted command that runs jobs says (ganad-bench, ganad-bench-paper --run): the next run resumes
RUN_INTERRUPTED = "interrupted: run the same command again to finish only the missing runs"


def _stop(signum, frame, line: str = RUN_INTERRUPTED) -> None:
    """Ctrl-C / SIGTERM at any moment: one line and exit 128 + signal at once. Unwinding instead would let the
    interrupt surface inside Hydra's or OmegaConf's internals as some other error with a traceback. Nothing
    is lost: rows and checkpoints are only ever replaced whole (atomic renames), the run lock dies with the
    process, the next run removes temporary files, and the interrupted run resumes from its checkpoint."""
    if sys.stderr.isatty():
        sys.stderr.write("\x1b[?25h")  # a progress bar may have hidden the cursor
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def stop_on_signals(argv: list[str] | None, line: str) -> None:
    """A result command run as a command (`argv` None: it reads sys.argv) ends on Ctrl-C / SIGTERM as
    ganad-bench does (`_stop`, with its own `line`), not in a traceback from wherever it was: its files are
    replaced whole, so an interrupted write leaves the earlier file. Called from Python it leaves the
    caller's handlers alone."""
    if argv is None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda number, frame: _stop(number, frame, line))


# what an interrupted result command says: it writes each file whole or not at all
RESULT_INTERRUPTED = "interrupted: no file was left half-written; run the same command again"


def _main(argv: list[str]) -> int:
    from rich.markup import escape

    from ganad_bench.console import console

    sys.argv[1:] = argv = expand_home(argv)  # Hydra reads sys.argv
    if "--version" in argv:  # ours, which names Hydra's among the libraries (Hydra's own prints only that)
        from ganad_bench.provenance import version_line

        print(version_line())
        return 0
    try:
        check_before_hydra(argv)
        if owns_help(argv):
            print(help_text(added_config_dirs(argv)))
            return 0
        unswept = unswept_experiment(argv)
    except GanadError as err:
        return error_exit(str(err)).code
    if unswept:
        console.print(f"[yellow]warning:[/] {escape(unswept)}", soft_wrap=True)
    sys.argv[1:] = settings_per_job(argv)
    # one id per command, shared with its workers (environment), so two sweeps started in the same second
    # get different sweep folders
    os.environ.setdefault("GANAD_SWEEP_ID", uuid.uuid4().hex[:6])
    from ganad_bench.outcomes import FINE, launched, read_outcomes

    first = len(launched)
    hydra_app()()
    outcomes = [outcome for folder in launched[first:] for outcome in read_outcomes(folder)]
    if launched[first:] and not outcomes:  # a sweep that expands to nothing ran nothing: not a success
        return error_exit("the sweep has no jobs: one of its values is empty (e.g. 'seed=range(0)'); "
                          "give at least one value, e.g. 'seed=range(10)'").code
    bad = [o for o in outcomes if o["status"] not in FINE]
    if not bad:
        return 0
    if len(outcomes) > 1:  # a single run's own line has said it all
        for status, line in failed_job_lines(bad)[:10]:  # the jobs' own lines may be in their logs (joblib)
            console.print(f"[bold red]{status}[/] {escape(line)}", soft_wrap=True)
        kinds = ", ".join(sorted({o["status"] for o in bad}))
        console.print(f"[bold red]{len(bad)} of {len(outcomes)} run(s) did not finish[/] ({kinds}): see each "
                      f"job's outcome.json and result.json", soft_wrap=True)
    return 2 if all(o["status"] == "invalid" for o in bad) and len(outcomes) == 1 else 1


def failed_job_lines(bad: list[dict]) -> list[tuple[str, str]]:
    """(status, text) per distinct failure of a sweep's jobs, in job order: jobs that failed alike (a missing
    data file ends every job of its dataset) are one line, "0_alad_kdd99_s0 and 19 more: <error>"."""
    def job_number(name: str) -> int:
        prefix = name.split("_")[0]
        return int(prefix) if prefix.isdigit() else 0

    alike: dict[tuple[str, str], list[str]] = {}
    for outcome in sorted(bad, key=lambda o: job_number(Path(o["job_dir"]).name)):
        error = outcome.get("error") or "no outcome recorded (killed?)"
        alike.setdefault((outcome["status"], error), []).append(Path(outcome["job_dir"]).name)
    return [(status, f"{jobs[0]}{f' and {len(jobs) - 1} more' if len(jobs) > 1 else ''}: {error}")
            for (status, error), jobs in alike.items()]


class PrintVersion(argparse.Action):
    """`--version`: the line of `provenance.version_line`, then exit 0 (computed only when asked: it runs git)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version of ganad_bench, its code (commit) "
                                                              "and its libraries, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from ganad_bench.provenance import version_line

        print(version_line())
        parser.exit()


class CommandParser(argparse.ArgumentParser):
    """The result commands' arguments. A mistake ends as ganad-bench's do, in one line naming the fix (exit 2),
    not argparse's usage block above it. Each takes `--version`, as ganad-bench does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=PrintVersion)

    def error(self, message: str):

        raise error_exit(f"{message} (see {self.prog} --help)")


def path_argument(text: str) -> Path:
    """A path given to a result command (`~` expanded). An empty one (`--out=`) would be the current folder, or
    the root below it, without the user having named either: refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a path")
    # `ganad-bench-paper rcgan:1 --run --out paths.output_dir=X`: --out took the override as its prefix, and
    # the runs went to the default output folder
    if re.match(r"[+~]*[A-Za-z_][\w.]*(/[\w.]+)?=", text):
        raise argparse.ArgumentTypeError(f"{text} looks like an override (key=value), not a path: give the path "
                                         f"(one with '=' in its name as ./{text})")
    return Path(text).expanduser()


def text_argument(text: str) -> str:
    """A name given to a result command (a metric, a table, a code version). An empty one (an unset shell
    variable in quotes) would match every row's code version, or no metric or table: refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a value")
    return text.strip()


def prefix_argument(text: str) -> Path:
    """An `--out` prefix of a table's files. A folder (one that exists, or written with a trailing `/`) holds them
    under the default name: `--out paper/` writes paper/table.csv, not paper.csv beside it."""
    path = path_argument(text)
    return path / TABLE_FILES_NAME if text.endswith(("/", os.sep)) or path.is_dir() else path


def table_main(argv: list[str] | None = None) -> None:
    """`ganad-bench-table [DIR ...] [--paper PAPER:TABLE]`: our rows beside the published numbers (with --paper:
    one published table in the paper's layout, every column of it)."""
    from ganad_bench.console import console
    from ganad_bench.results import paper

    stop_on_signals(argv, RESULT_INTERRUPTED)
    args = table_arguments(argv)
    try:
        reference = paper.check_reference(args.paper) if args.paper else None
        args.reference = [paper.check_reference(r) for r in args.reference or []] or None
    except ConfigError as err:
        raise error_exit(str(err)) from None
    check_row_folders(args.folders)
    check_table_options(args)
    check_outputs_outside_runs((args.out, "--out"), (args.reproduction, "--reproduction"))
    if args.copy_rows:
        copy_result_rows(args, console)
        return
    if not args.reproduction:  # before the rows are read and the table composed
        check_out_prefix(args.out, paper.table_stem(args.out, reference) if reference else args.out)
    frame = table_rows(args, console)
    where = ", ".join(map(str, args.folders)) + (f" from code version {args.code_version}" if args.code_version else "")
    if frame.empty and not (reference or args.reproduction):
        fix = ("drop --code-version or give another" if args.code_version else
               "run ganad-bench first; its rows go to <paths.output_dir>/results, outputs/results by default")
        raise error_exit(f"no finished result.json under {where} ({fix})", status=1)
    if frame.empty:  # the paper's table is still worth seeing: what a first run will stand beside
        console.print(f"[yellow]warning:[/] no finished result.json under {where}: the published numbers only",
                      soft_wrap=True)
    else:
        warn_mixed_code_versions(frame, console)
    if args.reproduction:
        write_reproduction(frame, args, console)
        return
    if args.by_anomaly_class:
        anomaly_class_tables(frame, args, where, console)
        return
    if reference:
        try:
            paper.show_paper_table(frame, reference, args.out, console)
        except OSError as err:
            raise cannot_write(args.out, err, "a writable --out prefix") from None
        return
    summary_tables(frame, args, where, console)


def check_table_options(args: argparse.Namespace) -> None:
    """Exit 2 with one line where two options of `ganad-bench-table` do not go together (one would be ignored)."""
    problem = None
    views = [name for name, given in (("--paper", args.paper), ("--reproduction", args.reproduction),
                                      ("--by-anomaly-class", args.by_anomaly_class), ("--copy-rows", args.copy_rows))
             if given]
    if args.replace_rows and not args.copy_rows:
        problem = "--replace-rows goes with --copy-rows DEST"
    elif len(views) > 1:
        problem = f"{views[0]} and {views[1]} are two different outputs: run them as two commands"
    elif args.metric and views and views[0] != "--copy-rows":  # they show what the papers print, or every class
        problem = f"--metric goes without {views[0]}, which chooses its own metrics: drop --metric"
    elif args.reference and views:  # it picks the published numbers of the summary table alone
        problem = f"--reference goes with the summary table, not {views[0]}: drop --reference"
    if problem:
        raise error_exit(problem)


def anomaly_class_tables(frame, args: argparse.Namespace, where: str, console) -> None:
    """`ganad-bench-table DIR --by-anomaly-class`: each run's AUROC against every anomalous class alone
    (`tables.per_anomaly_class`), printed and written to `PREFIX_<protocol>_auroc_by_anomaly_class.csv/.md`."""
    from rich.markup import escape

    from ganad_bench.atomic import write_atomic
    from ganad_bench.results.tables import per_anomaly_class, suffixed, table_console, to_markdown, to_rich

    tables = per_anomaly_class(frame)
    if not tables:
        raise error_exit(f"no row under {where} has an AUROC per anomalous class (the rows of runs whose "
                                  f"anomalies come from two classes or more have it, e.g. model=kde dataset=mnist "
                                  f"dataset.normal_class=8): run one, or drop --by-anomaly-class", status=1)
    out, written = table_console(), []
    for protocol, table in tables.items():
        title = f"AUROC (%) against each anomalous class alone · {protocol} · mean over seeds"
        stem = suffixed(args.out, f"_{protocol}_auroc_by_anomaly_class")
        try:
            written.append(write_atomic(suffixed(stem, ".csv"), lambda f, table=table: table.to_csv(f, index=False)))
            written.append(write_atomic(suffixed(stem, ".md"), lambda f, table=table, title=title:
                                        f.write(f"**{title}**\n\n{to_markdown(table)}")))
        except OSError as err:
            raise cannot_write(args.out, err, "a writable --out prefix") from None
        out.print(to_rich(table, title, keys=3))
    for path in written:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)


def summary_tables(frame, args: argparse.Namespace, where: str, console) -> None:
    """`ganad-bench-table DIR [--metric M ...]`: ours beside the published numbers, printed and written to
    `--out` (the files first, so that a bad --out is the only output)."""
    from rich.markup import escape

    from ganad_bench.results.tables import (
        console_table,
        default_metrics,
        metric_names,
        summarize,
        table_console,
        write_tables,
    )

    available = metric_names(frame)
    if args.metric:  # AUROC as the tables print it is auroc
        args.metric = [m if m in available or m.lower() not in available else m.lower() for m in args.metric]
    unknown = [m for m in args.metric or [] if m not in available]
    if unknown:
        raise error_exit(f"no row under {where} has the metric {', '.join(unknown)}: choose from "
                                  f"{', '.join(available)}")
    # per protocol: what its papers print (F1 for the tabular benchmarks, AUROC for the image ones), so that a
    # folder holding both shows both
    chosen = {protocol: args.metric or default_metrics(frame[frame["protocol"] == protocol])
              for protocol in frame["protocol"].unique()}
    long = summarize(frame, list(dict.fromkeys(m for metrics in chosen.values() for m in metrics)), args.reference)
    try:
        written = write_tables(long, args.out, chosen)
    except OSError as err:
        raise cannot_write(args.out, err, "a writable --out prefix") from None
    out = table_console()
    for protocol, metrics in chosen.items():
        if metrics[0] in set(long.loc[long["protocol"] == protocol, "metric"]):
            out.print(console_table(long, metrics[0], protocol, out))
    for path in written:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)  # a path whole on its line, brackets kept


def table_rows(args: argparse.Namespace, console):
    """The finished rows under the folders (`tables.rows_frame`), of `--code-version` when given; each
    unreadable row is named in a warning."""

    from ganad_bench.results.store import iter_results
    from ganad_bench.results.tables import rows_frame

    unreadable: list[Path] = []
    rows = iter_results(args.folders, unreadable)
    frame = rows_frame(rows)
    warn_unreadable(unreadable, console)
    warn_unfinished(rows, console)
    if args.code_version and not frame.empty:
        frame = frame[frame["code_version"].str.startswith(args.code_version)]
    return frame


def warn_unfinished(rows: list[dict], console) -> None:
    """One warning for the rows that did not finish (failed, diverged): the tables average the finished runs
    alone, so a cell of 10 seeds of which 3 diverged shows n=7, which says nothing of the 3 by itself."""
    from collections import Counter

    from rich.markup import escape

    unfinished = [row for row in rows if row.get("status") != "ok"]
    if not unfinished:
        return
    kinds = Counter(str(row.get("status")) for row in unfinished)
    first = unfinished[0]
    normal_class = f" class {first['normal_class']}" if first.get("normal_class") is not None else ""
    where = f"{first.get('model')} · {first.get('dataset')}{normal_class} · seed {first.get('seed')}"
    # rows written before errors were cut to one line may hold torch's C++ backtrace
    error = first_line(str(first.get("error") or ""), empty="no error recorded")
    console.print(f"[yellow]warning:[/] {len(unfinished)} run(s) did not finish ("
                  f"{', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))}) and are not in the means, "
                  f"e.g. {escape(where)}: {escape(error)} "
                  f"(rerunning their command retries them)", soft_wrap=True)


def warn_unreadable(paths: list[Path], console) -> None:
    """One warning per result.json that could not be read (and was skipped)."""
    from rich.markup import escape

    for path in paths:
        console.print(f"[yellow]warning:[/] skipped {escape(str(path))}: not a readable result (rerun its config to "
                      f"rebuild it)", soft_wrap=True)


def write_reproduction(frame, args: argparse.Namespace, console) -> None:
    """`ganad-bench-table DIR --reproduction FILE`: the report, and one line of counts."""
    from ganad_bench.atomic import check_writable
    from ganad_bench.results.reproduction import write_report

    def shown(path: Path) -> str:  # the command as a user would type it again
        text = str(path)
        home = str(Path.home())
        return "~" + text[len(home):] if text.startswith(home + os.sep) else text

    folders = " ".join(shown(f) for f in args.folders)
    command = f"ganad-bench-table {folders} --reproduction {shown(args.reproduction)}"
    results = args.folders[0]
    output_dir = shown(results.parent if results.name == "results" else results)
    try:
        check_writable(args.reproduction)  # before the report's composing (tens of seconds)
        numbers = write_report(frame, args.reproduction, command, output_dir)
    except OSError as err:
        raise cannot_write(args.reproduction, err, "a writable file, e.g. REPRODUCTION.md") from None
    console.print(f"wrote {args.reproduction}: " + ", ".join(f"{key} {value}" for key, value in numbers.items()),
                  soft_wrap=True)


def check_row_folders(folders: list[Path]) -> None:
    """Exit 2 with one line when a folder of rows given to a result command is missing or is a file (e.g. a
    result.json: the result commands read folders of rows)."""
    from ganad_bench.results.store import require_row_folders

    try:
        require_row_folders(folders)
    except ConfigError as err:
        raise error_exit(str(err)) from None


def check_out_prefix(out: Path, stem: Path, choose: str = "a writable --out prefix") -> None:
    """Exit 2 with one line, before any work, when the `.csv` file that an `--out` prefix names first (`stem`, the
    prefix or a paper table's `table_stem`) cannot be written: not after the table or the runs behind it."""
    from ganad_bench.atomic import check_writable
    from ganad_bench.results.tables import suffixed

    try:
        check_writable(suffixed(stem, ".csv"))  # as the writers name it
    except OSError as err:
        raise cannot_write(out, err, choose) from None


def cannot_write(where: Path, err: OSError, choose: str = "a writable path") -> SystemExit:
    """The one-line error for an output that cannot be written (exit 2); raise what it returns."""
    return error_exit(f"cannot write {where} ({err.strerror or err}): choose {choose}")


def copy_result_rows(args: argparse.Namespace, console) -> None:
    """`ganad-bench-table DIR --copy-rows DEST`: the rows alone (`store.copy_rows`), and one line saying how many."""
    from rich.markup import escape

    from ganad_bench.results.store import copy_rows

    dest = args.copy_rows.resolve()
    inside = [str(f) for f in args.folders if dest == f.resolve() or f.resolve() in dest.parents]
    if inside:
        raise error_exit(f"--copy-rows {args.copy_rows} lies inside {', '.join(inside)}: choose a folder "
                         f"outside the ones read")
    unreadable: list[Path] = []
    try:
        copied, same, kept = copy_rows(args.folders, args.copy_rows, unreadable, replace=args.replace_rows)
    except OSError as err:
        raise cannot_write(args.copy_rows, err, "a writable folder") from None
    warn_unreadable(unreadable, console)
    console.print(f"copied {copied} row(s) to {escape(str(args.copy_rows))} ({same} already there)", soft_wrap=True)
    if kept:
        console.print(f"[yellow]warning:[/] kept {len(kept)} row(s) already in {escape(str(args.copy_rows))} that "
                      f"differ from the new ones (the same runs measured again), e.g. {escape(str(kept[0]))}: "
                      f"--replace-rows takes the new ones", soft_wrap=True)


def table_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = CommandParser(prog="ganad-bench-table", description=table_main.__doc__)
    parser.add_argument("folders", nargs="*", type=path_argument, default=[Path("outputs/results")],
                        help="folders searched recursively for result.json (default: outputs/results)")
    parser.add_argument("--metric", action="append", type=text_argument,
                        help="metric to tabulate (repeatable; default: f1, precision, recall for tabular rows, auroc "
                             "otherwise)")
    parser.add_argument("--reference", action="append", type=text_argument, metavar="PAPER:TABLE",
                        help="published table(s) to compare with, in order of preference, e.g. alad:II")
    parser.add_argument("--code-version", type=text_argument, metavar="LABEL",
                        help="only rows from this code version (a prefix of the rows' code_version, e.g. a commit)")
    parser.add_argument("--paper", type=text_argument, metavar="PAPER:TABLE",
                        help="one published table in the paper's layout, e.g. memgan:1 or alad:II: writes "
                             "PREFIX_<paper>_<table>.csv/.md/.tex/.png")
    parser.add_argument("--reproduction", type=path_argument, metavar="FILE",
                        help="write the reproduction report (every published cell of every table, ours, status) "
                             "to FILE, e.g. REPRODUCTION.md")
    parser.add_argument("--copy-rows", type=path_argument, metavar="DEST",
                        help="copy every result.json under the folders to DEST, same layout, without scores, "
                             "checkpoints or plots (a few KB a run: a folder of rows to commit or share); a "
                             "row already in DEST that differs is kept")
    parser.add_argument("--by-anomaly-class", action="store_true",
                        help="each run's AUROC against every anomalous class alone (one-class image runs: which "
                             "digits a detector takes for the normal one), mean over seeds; writes "
                             "PREFIX_<protocol>_auroc_by_anomaly_class.csv/.md")
    parser.add_argument("--replace-rows", action="store_true",
                        help="with --copy-rows: replace the rows already in DEST that differ from the new ones")
    parser.add_argument("--out", type=prefix_argument, default=Path("outputs/tables") / TABLE_FILES_NAME,
                        help="output prefix: writes PREFIX.csv and PREFIX_<protocol>_<metric>.md/.tex (a folder: "
                             "FOLDER/table.csv, ...)")
    return parser.parse_args(argv)


def warn_mixed_code_versions(frame, console) -> None:
    """One warning when some cells average rows written by different code versions."""
    from ganad_bench.results.tables import IDENTITY_COLUMNS

    mixed = frame.groupby(IDENTITY_COLUMNS, sort=False)["code_version"].nunique()
    mixed = mixed[mixed > 1]
    if mixed.empty:
        return
    first = mixed.index[0]
    versions = sorted(frame[(frame[IDENTITY_COLUMNS] == list(first)).all(axis=1)]["code_version"].unique())
    console.print(f"[yellow]warning:[/] {len(mixed)} cell(s) mix rows of several code versions (e.g. {first[4]} · "
                  f"{first[1]}: {', '.join(versions)}): choose one with --code-version", soft_wrap=True)


def paper_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = CommandParser(prog="ganad-bench-paper", description=paper_main.__doc__)
    parser.add_argument("table", metavar="PAPER:TABLE", help="a published table, e.g. memgan:1, alad:II, rcgan:1")
    parser.add_argument("--run", action="store_true", help="run the missing runs, then print the table")
    parser.add_argument("--out", type=prefix_argument, help="output prefix of the table's files (default: "
                        "<paths.output_dir>/tables/table, writing table_<paper>_<table>.csv/.md/.tex/.png; a "
                        "folder: FOLDER/table_<paper>_<table>...)")
    # default=[]: without it parse_intermixed_args reports OVERRIDE as required when PAPER:TABLE is missing
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", default=[],
                        help="ganad-bench overrides for every run, e.g. trainer.epochs=2 seed=0,1 paths.output_dir=DIR")
    args = parser.parse_intermixed_args(argv)
    args.overrides = expand_home(args.overrides)  # as ganad-bench reads them, which --run passes them on to
    return args


def paper_main(argv: list[str] | None = None) -> None:
    """`ganad-bench-paper PAPER:TABLE [--run] [OVERRIDE ...]`: how many runs of the table's experiment are
    finished and missing; with --run, run the missing ones (`ganad-bench -m experiment=<name> OVERRIDE ...`);
    then the table in the paper's layout (as `ganad-bench-table --paper`)."""
    from rich.markup import escape

    from ganad_bench.config import compose_config, to_container
    from ganad_bench.console import console, step
    from ganad_bench.results import paper
    from ganad_bench.results.store import iter_results
    from ganad_bench.results.tables import rows_frame

    stop_on_signals(argv, RUN_INTERRUPTED)  # --run
    args = paper_arguments(argv)
    try:
        reference = paper.check_reference(args.table)
        check_sweep_size(args.overrides)  # before the plan lists every job
        with step(f"counting the runs of {reference}"):
            plans = paper.table_plan(reference, args.overrides)
        invalid = [error for _, _, errors in plans for error in errors]
        if invalid and not any(runs for _, runs, _ in plans):  # told against the table's own experiments' configs
            raise ConfigError(f"every job of {reference} is invalid, e.g. {invalid[0]}")
        paths = to_container(compose_config(config_overrides(args.overrides)))["paths"]
        output = output_folder(paths)  # empty: a one-line error, not rows looked for in /results
    except GanadError as err:
        raise error_exit(str(err)) from None
    except KeyboardInterrupt:
        _stop(signal.SIGINT, None)
    out = args.out or output / "tables" / TABLE_FILES_NAME
    check_outputs_outside_runs((out, "--out"))
    choose = "a writable --out prefix" if args.out else "a writable paths.output_dir (or an --out prefix)"
    check_out_prefix(out, paper.table_stem(out, reference), choose)  # before --run's hours of training
    results = Path(paths["results_dir"])
    rows = iter_results([results]) if results.is_dir() else []
    todo = paper.report_plan(reference, plans, rows, console)
    status = 0
    for experiment in todo if args.run else []:
        status = max(status, paper.launch(experiment, args.overrides, console))
        if status >= 128:  # interrupted: the command has said so
            raise SystemExit(status)
    if args.run:
        rows = iter_results([results]) if results.is_dir() else []
    elif todo:
        console.print(escape(f"to run them: ganad-bench-paper {' '.join([reference, '--run', *args.overrides])}"),
                      soft_wrap=True)
    warn_unfinished(rows, console)
    try:
        paper.show_paper_table(rows_frame(rows), reference, out, console)
    except OSError as err:
        raise cannot_write(out, err, "a writable --out prefix") from None
    if args.run and invalid:  # as a sweep with invalid jobs: the valid ones ran, the command says it was not all
        status = max(status, 1)
    if status:
        raise SystemExit(status)


def check_score_output(out: Path, inputs: Path) -> None:
    """The scores' CSV replaces neither the inputs nor a file of a run (its row, its scores, its detector):
    `--out x.csv` for the input x.csv replaced the rows with their scores."""
    if out.resolve() == inputs.resolve():
        raise ConfigError(f"--out {out} is the inputs file: the scores would replace it; choose another file "
                          f"(by default INPUTS.scores.csv beside it)")
    check_outside_runs(out, "--out")


def check_outputs_outside_runs(*outputs: tuple[Path | None, str]) -> None:
    """`check_outside_runs` for each (path, option) given (None: not asked for), as a one-line exit 2."""
    try:
        for path, option in outputs:
            if path is not None:
                check_outside_runs(path, option)
    except ConfigError as err:
        raise error_exit(str(err)) from None


def check_outside_runs(path: Path, option: str) -> None:
    """A result command's output does not lie in a run's folder (one that holds a result.json), whose files the
    run needs: `ganad-bench-score --out RUN/result.json` replaced the run's row with a CSV, and
    `ganad-bench-table --out RUN/metrics` would replace its metrics.csv with a table."""
    from ganad_bench.results.store import RESULT_FILE

    target = Path(path).resolve()
    for folder in (target, *target.parents):
        if (folder / RESULT_FILE).is_file():
            raise ConfigError(f"{option} {path} lies in the run folder {folder}, whose files the run needs: "
                              f"write it elsewhere")


def score_main(argv: list[str] | None = None) -> None:
    """`ganad-bench-score RUN_DIR FILE`: score new rows or images with a finished run's own preprocessing and
    detector; writes one CSV line per input (score, and flag = score at or above the run's threshold)."""
    from rich.markup import escape

    from ganad_bench.atomic import check_writable, write_atomic, writes_through
    from ganad_bench.console import console
    from ganad_bench.runs import load_run, read_inputs
    from ganad_bench.training.settings import check_device_name

    parser = CommandParser(prog="ganad-bench-score", description=score_main.__doc__)
    parser.add_argument("run_dir", type=path_argument,
                        help="a run folder (outputs/results/.../seed<seed>-<hash>) or its result.json")
    parser.add_argument("inputs", type=path_argument,
                        help="a .npy array or .csv of raw rows, or a folder of .png images")
    parser.add_argument("--out", type=path_argument, default=None, help="CSV to write (default: INPUTS.scores.csv)")
    parser.add_argument("--device", default="cpu", help="where a deep detector scores: cpu (default), auto, cuda, mps")
    stop_on_signals(argv, RESULT_INTERRUPTED)
    args = parser.parse_args(argv)
    out = args.out or args.inputs.with_name(args.inputs.name + ".scores.csv")
    try:
        # named as this command takes it, before anything loads; the CPU is always there (no torch to load to ask)
        if check_device_name(args.device, setting="--device")[0] != "cpu":
            from ganad_bench.training.device import resolve_device

            resolve_device(args.device, setting="--device")
        run = load_run(args.run_dir, device=args.device)
        check_score_output(out, args.inputs)
        x, names = read_inputs(args.inputs)
        if np.ndim(x) >= 1 and len(x) == 0:
            raise ConfigError(f"{args.inputs} holds no rows to score: give at least one")
        try:
            check_writable(out)  # before the scoring, which can take hours (AnoGAN's latent search)
        except OSError as err:
            raise cannot_write(out, err, "a writable --out file") from None
        # a kill keeps the scores so far beside the CSV (not beside /dev/stdout); the same command goes on
        scores = run.score(x, partial=None if writes_through(out) else out.with_name(out.name + ".partial.npz"))
    except GanadError as err:
        raise error_exit(str(err)) from None
    if run.resumed_at_row:
        console.print(f"went on from the {run.resumed_at_row} scores kept by an interrupted scoring of these inputs")
    import pandas as pd

    frame = pd.DataFrame({"score": scores, "flag": run.flags(scores)})
    if names is not None:
        frame.insert(0, "file", names)
    try:  # whole or not at all: a kill while writing leaves the earlier file, not a truncated one
        write_atomic(out, lambda handle: frame.to_csv(handle, index=False, float_format="%.17g"))
    except OSError as err:
        raise cannot_write(out, err, "a writable --out file") from None
    n = len(frame)
    console.print(f"wrote {n} score{'' if n == 1 else 's'} ({int(frame['flag'].sum())} flagged) → {escape(str(out))}")


def plot_main(argv: list[str] | None = None) -> None:
    """`ganad-bench-plot [DIR ...]`: one ROC figure per table cell (every seed of a model on a dataset and
    class, with the same settings), from the runs' scores.npz; the per-run plots are drawn when a run ends."""
    from rich.markup import escape

    from ganad_bench.console import console
    from ganad_bench.results.plots import plot_cell_rocs
    from ganad_bench.results.store import iter_results
    from ganad_bench.results.tables import IDENTITY_COLUMNS, rows_frame
    from ganad_bench.runs import SCORES_FILE

    parser = CommandParser(prog="ganad-bench-plot", description=plot_main.__doc__)
    parser.add_argument("folders", nargs="*", type=path_argument, default=[Path("outputs/results")],
                        help="folders searched recursively for result.json and their scores.npz (default: "
                             "outputs/results)")
    parser.add_argument("--out", type=path_argument, default=Path("outputs/plots"),
                        help="folder for the PNG files (default: outputs/plots)")
    stop_on_signals(argv, RESULT_INTERRUPTED)
    args = parser.parse_args(argv)
    check_row_folders(args.folders)
    check_outputs_outside_runs((args.out, "--out"))
    if args.out.exists() and not args.out.is_dir():
        raise cannot_write(args.out, NotADirectoryError(errno.ENOTDIR, "a file, not a folder"),
                           "a writable --out folder")
    unreadable: list[Path] = []
    rows = [row for row in iter_results(args.folders, unreadable, with_folder=True) if row.get("status") == "ok"]
    warn_unreadable(unreadable, console)
    if not rows:
        raise error_exit(f"no finished result.json under {', '.join(map(str, args.folders))}", status=1)
    # the table's cells: runs that differ in a setting (their `variant`) are drawn apart, as the tables keep them
    frame = rows_frame(rows).assign(run_dir=[row["run_dir"] for row in rows])
    drawn, without_scores = 0, []
    for identity, cell in frame.groupby(IDENTITY_COLUMNS, sort=True):
        cell_id = dict(zip(IDENTITY_COLUMNS, identity, strict=True))
        curves, missing = cell_curves(cell, console)
        if not curves:
            without_scores += missing
            continue
        name, title = roc_figure_name(cell_id)
        try:
            plot_cell_rocs(curves, args.out / name, title)
        except OSError as err:
            raise cannot_write(args.out, err, "a writable --out folder") from None
        console.print(f"wrote {escape(str(args.out / name))}", soft_wrap=True)
        drawn += 1
    if drawn and without_scores:
        console.print(f"[yellow]warning:[/] no figure for the cells of {len(without_scores)} run(s) without "
                      f"{SCORES_FILE}, e.g. {escape(str(without_scores[0]))}", soft_wrap=True)
    if not drawn:
        raise error_exit(f"no {SCORES_FILE} beside the result.json files under "
                                  f"{', '.join(map(str, args.folders))} (rows copied by --copy-rows carry no scores): "
                                  f"point at the runs' own results folder", status=1)


def cell_curves(cell, console) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[Path]]:
    """(seed label, test labels, scores) of each run of a cell that kept readable scores, and the scores files
    that are missing (a row copied by --copy-rows, a folder cut short); runs left out of a figure that is
    drawn, and unreadable files, are named in a warning here."""
    from rich.markup import escape

    from ganad_bench.atomic import UnreadableArrays, read_npz
    from ganad_bench.runs import SCORES_FILE

    curves, missing = [], []
    for _, row in cell.sort_values("seed").iterrows():
        path = Path(row["run_dir"]) / SCORES_FILE
        try:
            saved = read_npz(path, required=("labels", "scores"))
            curves.append((f"seed {row['seed']}", saved["labels"], saved["scores"]))
        except UnreadableArrays as err:
            if err.missing:
                missing.append(path)
                continue
            console.print(f"[yellow]warning:[/] left out {escape(str(path))}: unreadable "
                          f"({escape(str(err))}); rerun the run with force=true to write it again",
                          soft_wrap=True)
    if missing and curves:
        console.print(f"[yellow]warning:[/] {len(missing)} run(s) of this figure have no {SCORES_FILE} and are left "
                      f"out, e.g. {escape(str(missing[0]))}", soft_wrap=True)
    return curves, missing


def roc_figure_name(cell: dict) -> tuple[str, str]:
    """The file name and title of a cell's ROC figure: dataset, protocol, model and class, plus the anomaly
    set (cross-dataset) and the settings that set the cell apart (its variant), in a name safe as one file."""
    import hashlib
    import re
    import textwrap

    normal_class = cell["normal_class"] or "all"
    parts = [cell["dataset"], cell["protocol"], cell["model"], normal_class]
    parts += [f"vs_{cell['anomaly_dataset']}"] if cell["anomaly_dataset"] else []
    title = f"{cell['model']} · {cell['dataset']} · {normal_class}"
    title += f" vs {cell['anomaly_dataset']}" if cell["anomaly_dataset"] else ""
    if cell["variant"]:
        variant = re.sub(r"[^\w.=,-]+", "_", cell["variant"])
        if len(variant) > 80:  # a file name stays well under the file system's limit, and still unique
            variant = f"{variant[:71]}_{hashlib.sha1(cell['variant'].encode()).hexdigest()[:8]}"
        parts.append(variant)
        title += "\n" + textwrap.fill(cell["variant"].replace(",", ", "), 48)
    return "_".join(str(p) for p in parts).replace("/", "_") + "_roc.png", title

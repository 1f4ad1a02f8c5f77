"""One published table in the paper's own layout (`ganad-bench-table --paper memgan:1`), and the experiment
behind it: how many of its runs are finished, how many missing (`ganad-bench-paper`).

The table has every cell the paper prints, in the paper's order, with ours beside it where we have runs
(mean ± std over seeds and the number of seeds, the difference to the published number). A column we
have no run for is shown published-only. Our cell is marked (†) where its runs' training budget or model
settings differ from the experiment's paper settings (`conf/experiment/<paper>_table<N>.yaml`), and an
average row is compared with the paper's only when every class of the table has runs of ours.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pandas as pd

from ganad_bench.errors import ConfigError, GanadError
from ganad_bench.results.published import CITATIONS, TABLE_PROTOCOLS, model_names, published_table
from ganad_bench.results.run_times import time_estimate
from ganad_bench.results.tables import AVERAGE, flatten_config, summarize

ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4", "V": "5", "VI": "6", "VII": "7", "VIII": "8"}
# metrics the papers print in percent (the published table holds them as fractions)
FRACTIONS = ("auroc", "auprc", "f1", "precision", "recall")
METRIC_LABELS = {"f1": "F1", "auroc": "AUROC", "precision": "Precision", "recall": "Recall",
                 "inference_ms_per_batch": "inference ms / batch"}
# the settings that make a run the paper's, beside model.params: for deep models the training budget and the
# real batch of the generator-side update (the others never train); for every model the feature scaling
# (ALAD's runs use the unscaled features) and the share of normal training rows held out (Ruff et al.'s DCAE
# trained on five sixths of its MNIST class)
BUDGET_KEYS = ("trainer.epochs", "trainer.batch_size", "trainer.lr")
SETTING_KEYS = (*BUDGET_KEYS, "dataset.scaler", "protocol.val_fraction", "trainer.generator_batch")
MARKERS = ("†", "‡", "§", "¶")
KEYS = ["dataset", "anomaly_dataset", "normal_class", "column", "metric"]
OUR_COLUMNS = [*KEYS, "model", "variant", "mean", "std", "n_seeds", "differs", "partial"]


def table_protocol(reference: str) -> str:
    """The protocol a published table's cells were measured under (`paper:table`; "" when unknown)."""
    return TABLE_PROTOCOLS.get(tuple(reference.split(":")), "")


def table_references() -> list[str]:
    """Every published table, as `paper:table`, by paper and table number."""
    def number(reference: str) -> tuple[str, int]:
        paper, table = reference.split(":")
        return paper, int(ROMAN.get(table, table))

    return sorted(set(published_table()["reference"]), key=number)


def check_reference(text: str) -> str:
    """`ALAD:ii` -> `alad:II`; an unknown table is a one-line ConfigError that lists the known ones."""
    paper, _, table = text.partition(":")
    reference = f"{paper.strip().lower()}:{table.strip().upper()}"
    if reference not in table_references():
        raise ConfigError(f"no published table {text}: choose one of {', '.join(table_references())}")
    return reference


def table_experiments(reference: str) -> list[str]:
    """The experiment configs of a table: `<paper>_table<N>` (roman numerals as numbers) first, then its
    parts and companions (`ama_table2_mnist`, `memgan_table1_baselines`)."""
    from ganad_bench.cli import group_options

    paper, table = reference.split(":")
    stem = f"{paper}_table{ROMAN.get(table, table)}"
    options = group_options("experiment")
    return [name for name in options if name == stem] + [name for name in options if name.startswith(f"{stem}_")]


def require_experiments(reference: str) -> list[str]:
    """The table's experiment configs; none is a one-line ConfigError naming the tables that have one."""
    names = table_experiments(reference)
    if not names:
        known = [f"{ref} ({', '.join(table_experiments(ref))})" for ref in table_references()
                 if table_experiments(ref)]
        raise ConfigError(f"no experiment config for {reference}: the tables with one are {', '.join(known)}")
    return names


# ---------------------------------------------------------------------------------------------- the sweep


def _parse(tokens: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ganad_bench.config import composition_error

    try:
        return OverridesParser.create().parse_overrides(tokens)
    except Exception as err:  # Hydra's grammar errors
        raise ConfigError(composition_error(err)) from None


@contextmanager
def hydra_initialised():
    """Hydra set up with the app's configs for the block (a no-op inside a Hydra app or an outer block), so
    that many compositions share one initialisation."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        yield


@cache
def composed_experiment(experiment: str, *overrides: str) -> tuple[tuple[str, ...], dict]:
    """One composition of `experiment=<name> <overrides>`, with Hydra's own config: the experiment's sweep
    (`hydra.sweeper.params` as overrides, `seed=range(10)`) and the resolved config its jobs start from. A
    table's plan and the reproduction report read both of many experiments, and a composition takes about
    0.4 s; callers do not change the config (`check_run_config` copies it)."""
    from omegaconf import OmegaConf, open_dict

    from ganad_bench.config import compose_config, to_container

    with hydra_initialised():
        config = compose_config([f"experiment={experiment}", *overrides], with_hydra=True)
    params = OmegaConf.to_container(config.hydra.sweeper.params) or {}
    with open_dict(config):  # what compose(return_hydra_config=False) returns: the run's config alone
        del config["hydra"]
    return tuple(f"{key}={value}" for key, value in params.items()), to_container(config)


def sweeper_params(experiment: str) -> tuple[str, ...]:
    """The experiment's `hydra.sweeper.params` as overrides (`seed=range(10)`), read as Hydra composes them."""
    return composed_experiment(experiment)[0]


def expand_sweep(tokens: list[str]) -> list[list[str]]:
    """Every job of a multirun, as Hydra's basic sweeper makes them (a later value of a key wins: the command
    line over the experiment's sweep)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    try:
        (jobs,) = BasicSweeper.split_arguments(_parse(tokens), None)
    except HydraException as err:
        raise ConfigError(f"cannot expand the sweep: {err}") from None
    return jobs


@cache
def swept_values(experiment: str) -> dict[str, frozenset[str]]:
    """The values each swept key of an experiment takes, as rows record them (`False`, `0.0001`)."""
    values = {}
    for override in _parse(list(sweeper_params(experiment))):
        typed = override.sweep_iterator() if override.is_sweep_override() else [override.value()]
        values[override.get_key_element()] = frozenset(str(value) for value in typed)
    return values


def experiment_runs(experiment: str, overrides: list[str]) -> tuple[list[tuple[Path, dict]], list[str]]:
    """(run folder, checked config) of every job of `ganad-bench -m experiment=<name> <overrides>`, and the
    errors of the jobs that would be invalid."""
    from ganad_bench.models.kit.catalog import is_deep
    from ganad_bench.results.store import run_dir

    tokens = [*sweeper_params(experiment), *(t for t in overrides if not t.lstrip("+~").startswith("hydra"))]
    composed: dict[tuple, dict | GanadError] = {}
    runs, errors = [], []
    with hydra_initialised():
        for job in expand_sweep(tokens):
            try:
                config = _job_config(experiment, job, composed)
            except GanadError as err:
                errors.append(str(err))
                continue
            deep = is_deep(config["model"]["name"])
            runs.append((run_dir(Path(config["paths"]["results_dir"]), config, deep), config))
    return runs, errors


def _job_config(experiment: str, job: list[str], composed: dict) -> dict:
    """One job's checked config. Jobs that differ only in the seed are composed once (`composed` keeps the
    compositions, and their errors, by the other overrides): a sweep of 10 seeds costs one composition."""
    from ganad_bench.config import check_run_config

    rest = tuple(o for o in job if not o.startswith("seed="))
    if rest not in composed:
        try:
            composed[rest] = composed_experiment(experiment, *rest)[1]
        except GanadError as err:  # kept: the cache above keeps only what composed
            composed[rest] = err
    if isinstance(composed[rest], GanadError):
        raise composed[rest]
    seeds = [override.value() for override in _parse([o for o in job if o.startswith("seed=")])]
    return check_run_config({**composed[rest], **({"seed": seeds[-1]} if seeds else {})})


def companion_experiments(reference: str) -> list[str]:
    """The other experiment configs that run columns of the table (the baselines' sweeps: `tabular_baselines`
    for ALAD Table II's OC-SVM and IF, ...), in the order of the table's cells."""
    from ganad_bench.results.reproduction import producing_experiment

    published = published_table()
    cells = published[published["reference"] == reference]
    own = set(table_experiments(reference))
    found = dict.fromkeys(producing_experiment(reference, column, dataset, anomalies or "")
                          for column, dataset, anomalies in zip(cells["model"], cells["dataset"],
                                                                cells["anomaly_dataset"], strict=True))
    return [name for name in found if name is not None and name not in own]


def table_plan(reference: str, overrides: list[str]) -> list[tuple[str, list[tuple[Path, dict]], list[str]]]:
    """(experiment, runs, invalid-job errors) for each experiment of the table; an experiment whose runs are
    all an earlier one's (`alad_table3_cifar10` is part of `alad_table3`) is left out, and a run shared by
    two experiments is counted with the first."""
    experiments = [*require_experiments(reference), *companion_experiments(reference)]
    chosen = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == "experiment"]
    if chosen:  # the table runs its own experiments: another one here was dropped without a word
        raise ConfigError(f"{chosen[0]}: {reference} runs its own experiments ({', '.join(experiments)}); drop it, "
                          f"or run another experiment with ganad-bench -m {chosen[0].lstrip('+~')}")
    seen: set[Path] = set()
    plans = []
    for experiment in experiments:
        runs, errors = experiment_runs(experiment, overrides)
        fresh = [(folder, config) for folder, config in runs if folder not in seen]
        if runs and not fresh:
            continue
        seen.update(folder for folder, _ in fresh)
        plans.append((experiment, fresh, errors))
    return plans


def report_plan(reference: str, plans: list, rows: list[dict], console) -> list[str]:
    """Print, per experiment of the table, how many of its runs are finished and missing (those under way:
    with a checkpoint, and the share of their epochs trained), a rough time for the rest of the missing ones'
    training, and the invalid jobs; returns the experiments that have missing runs."""
    from rich.markup import escape

    from ganad_bench.results.store import finished, trained_epochs

    todo = []
    for experiment, runs, errors in plans:
        missing = [(folder, config) for folder, config in runs if finished(folder) is None]
        trained = [trained_epochs(folder) for folder, _ in missing]
        line = f"{reference} · experiment={experiment}: {len(runs)} run(s), {len(runs) - len(missing)} finished, " \
               f"{len(missing)} missing{under_way(trained, [config for _, config in missing])}"
        estimate = f" · {time_estimate([c for _, c in missing], rows, reference, trained)}" if missing else ""
        console.print(escape(line + estimate), soft_wrap=True)
        if errors:
            console.print(f"[yellow]warning:[/] {len(errors)} job(s) of {experiment} are invalid, e.g. "
                          f"{escape(errors[0])}", soft_wrap=True)
        if missing:
            todo.append(experiment)
    return todo


def under_way(trained: list, configs: list[dict]) -> str:
    """" (3 under way, 53% of their epochs trained)" for the missing runs that have a checkpoint, else ""."""
    started = [(done, (config.get("trainer") or {}).get("epochs")) for done, config in zip(trained, configs,
                                                                                           strict=True)
               if done is not None]
    if not started:
        return ""
    shares = [done / epochs for done, epochs in started if epochs]
    share = f", {100 * sum(shares) / len(shares):.0f}% of their epochs trained" if shares else ""
    return f" ({len(started)} under way{share})"


def launch(experiment: str, overrides: list[str], console) -> int:
    """Run `ganad-bench -m experiment=<name> <overrides>` (finished runs are skipped) and return its exit
    status. Ctrl-C is left to that command, which reports it and exits 130; this one then stops too."""
    import signal
    import subprocess
    import sys

    command = ["-m", f"experiment={experiment}", *overrides]
    console.print(f"running: ganad-bench {' '.join(command)}", soft_wrap=True, markup=False)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command sets its own handler
    try:
        done = subprocess.run([sys.executable, "-c", "from ganad_bench.cli import main; main()", *command],
                              check=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    return done.returncode


# ----------------------------------------------------------------------------------------------- the cells


@cache
def paper_settings(experiment: str, model: str, dataset: str) -> dict[str, str]:
    """The settings a run of `model` on `dataset` gets from `experiment`, flattened as `rows_frame` records
    them: trainer.epochs / batch_size / lr (for models that train networks), dataset.scaler,
    protocol.val_fraction, model.params."""
    from ganad_bench.models.kit.catalog import is_deep

    # in a sweep's order (model, then dataset), a job of a sweep over both is this same composition
    config = composed_experiment(experiment, f"model={model}", f"dataset={dataset}")[1]
    flat = flatten_config({"trainer": config["trainer"] if is_deep(model) else {},
                           "dataset": {"scaler": config["dataset"].get("scaler")},
                           "protocol": {"val_fraction": config["protocol"].get("val_fraction")},
                           "model": {"params": config["model"].get("params") or {}}})
    return {key: value for key, value in flat.items() if key in SETTING_KEYS or key.startswith("model.params.")}


def settings_difference(settings: dict[str, str], model: str, dataset: str, experiments: list[str]) -> str:
    """"" when a run has the paper settings of one of the table's experiments (a value an experiment sweeps
    over is one of its settings), else how it differs from the first:
    "trainer.epochs=2 (paper settings: 7), model.params.width=16 (128)". Keys a row does not record are
    not compared."""
    if not any(key in SETTING_KEYS or key.startswith("model.params.") for key in settings):
        return ""  # nothing to compare (and no composition to pay for)
    first = None
    for experiment in experiments:
        try:
            expected = paper_settings(experiment, model, dataset)
        except GanadError:  # a model or dataset the configs no longer have: nothing to compare with
            continue
        swept = swept_values(experiment)
        differing = [(key, settings[key], value) for key, value in expected.items()
                     if key in settings and settings[key] != value and settings[key] not in swept.get(key, ())]
        if not differing:
            return ""
        first = first or differing
    if not first:
        return ""
    return SettingsDifference(", ".join(f"{key}={ours} ({'paper settings: ' if i == 0 else ''}{paper})"
                                        for i, (key, ours, paper) in enumerate(first)), changed=len(first))


class SettingsDifference(str):
    """`settings_difference`'s text, which the tables print, carrying how many settings it names (`changed`):
    counted where the difference is found, since a value can itself hold ", " or "="."""

    changed: int

    def __new__(cls, text: str, changed: int):
        difference = super().__new__(cls, text)
        difference.changed = changed
        return difference


def differing_settings(differs: tuple[str, ...]) -> int:
    """How many settings a cell's runs change from the paper's: the most over its runs' distinct
    `settings_difference`s (0: the paper's settings)."""
    return max((difference.changed for difference in differs), default=0)


def _our_cells(frame: pd.DataFrame, published: pd.DataFrame, reference: str,
               metrics: list[str] | None = None) -> pd.DataFrame:
    """Our cells that can fall in the table: `summarize`'s mean / std / n seeds per (dataset, class, model,
    variant, metric), the table's column for each (the paper's name for our model or ablation variant),
    and `differs`, how the cell's runs differ from the paper settings. `metrics`: the frame's columns to
    summarise (default: the table's metrics; the learning curves' points, `reproduction.learning_curves`)."""
    if frame.empty:
        return pd.DataFrame(columns=OUR_COLUMNS)
    protocol = table_protocol(reference)
    part = frame[(frame["protocol"] == protocol) & frame["dataset"].isin(set(published["dataset"]))]
    metrics = metrics if metrics is not None else list(dict.fromkeys(published["metric"]))
    long = summarize(part, metrics) if not part.empty else pd.DataFrame()
    if long.empty:
        return pd.DataFrame(columns=OUR_COLUMNS)
    long = long[long["normal_class"] != AVERAGE]
    table_models = set(published["model"])
    columns = {}
    first_settings = part.groupby(["model", "dataset", "variant"])["settings"].first()
    for (model, dataset, variant), settings in first_settings.items():
        names = model_names(model, json.loads(settings))
        columns[(model, dataset, variant)] = next((name for name in names if name in table_models), None)
    long = long.assign(column=[columns.get(key) for key in zip(long["model"], long["dataset"], long["variant"],
                                                                strict=True)])
    differs = _differences(part, table_experiments(reference))
    long = long.merge(differs, on=["dataset", "anomaly_dataset", "normal_class", "model", "variant"], how="left")
    return long[long["column"].notna()].assign(partial="")[OUR_COLUMNS]


def running_experiments(experiments: list[str], model: str, dataset: str, anomalies: str) -> list[str]:
    """The experiments among a table's whose sweeps run `model` on `dataset`: their settings are the paper's
    for its runs (AMA Table 2's Deep SVDD is `ama_table2_deep_svdd`'s, without contrast normalisation, not the
    defaults `ama_table2_baselines` would compose it to); all of them when none runs it (a column run by a
    companion sweep, as ALAD Table II's OC-SVM by `tabular_baselines`)."""
    from ganad_bench.results.reproduction import runs_column

    return [name for name in experiments if runs_column(name, model, {}, dataset, anomalies)] or experiments


def _differences(frame: pd.DataFrame, experiments: list[str]) -> pd.DataFrame:
    """Per (dataset, class, model, variant): the distinct ways its runs differ from the paper settings."""
    memo: dict[tuple, str] = {}
    found = []
    for model, dataset, anomalies, settings in zip(frame["model"], frame["dataset"], frame["anomaly_dataset"],
                                                   frame["settings"], strict=True):
        key = (model, dataset, anomalies, settings)  # anomalies: "" unless cross-dataset (rows_frame)
        if key not in memo:
            memo[key] = settings_difference(json.loads(settings), model, dataset,
                                            running_experiments(experiments, *key[:3]))
        found.append(memo[key])
    keys = ["dataset", "anomaly_dataset", "normal_class", "model", "variant"]
    grouped = frame[keys].assign(differs=found).groupby(keys, sort=False)["differs"]
    return grouped.agg(lambda values: tuple(sorted(set(values) - {""}))).reset_index()


def _averages(ours: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Our average rows, for the datasets whose table prints one: the mean over classes of our per-class
    means, ± the std across classes, n the fewest seeds of a class. With every class of the table it stands
    beside the paper's average; with some classes only it is `partial` ("2 of 10 classes")."""
    from ganad_bench.data.image_sources import CLASS_NAMES

    lines = []
    for dataset, cells in published.groupby("dataset", sort=False):
        if AVERAGE not in set(cells["normal_class"]):
            continue
        required = set(cells["normal_class"]) - {AVERAGE} or {str(i) for i in range(len(CLASS_NAMES[dataset]))}
        mine = ours[(ours["dataset"] == dataset) & ours["normal_class"].isin(required)]
        for (column, model, variant, metric), group in mine.groupby(["column", "model", "variant", "metric"],
                                                                    sort=False):
            n_classes = group["normal_class"].nunique()
            lines.append({
                "dataset": dataset, "anomaly_dataset": "", "normal_class": AVERAGE, "column": column,
                "metric": metric, "model": model, "variant": variant, "mean": group["mean"].mean(),
                "std": group["mean"].std(ddof=1) if n_classes > 1 else 0.0, "n_seeds": group["n_seeds"].min(),
                "differs": tuple(sorted({d for ds in group["differs"] for d in ds})),
                "partial": "" if n_classes == len(required) else f"{n_classes} of {len(required)} classes"})
    return pd.DataFrame(lines, columns=OUR_COLUMNS)


def paper_cells(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """One line per cell of the paper's table, in its order: every published cell (`column` is the paper's
    column, `class_label` its class), ours beside it where we have runs (mean, std, n_seeds, diff, the
    `differs` notes), then our partial averages, which have no published number. `rows_frame` makes `frame`."""
    published = published_table()
    published = published[published["reference"] == reference]
    ours = _our_cells(frame, published, reference)
    averages = _averages(ours, published)
    complete = averages[averages["partial"] == ""]
    if not complete.empty:  # (complete averages exist only where ours has class cells)
        ours = pd.concat([ours, complete], ignore_index=True)
    paper = published.rename(columns={"model": "column", "mean": "published", "std": "published_std"})
    cells = paper[[*KEYS, "class_label", "published", "published_std"]].merge(ours, on=KEYS, how="left")
    partial = averages[averages["partial"] != ""]
    if not partial.empty:
        labels = partial.assign(class_label=[f"{AVERAGE} ({text})" for text in partial["partial"]],
                                published=math.nan, published_std=math.nan)
        cells = pd.concat([cells, labels[cells.columns]], ignore_index=True)
    cells["partial"] = cells["partial"].fillna("")
    cells["differs"] = [d if isinstance(d, tuple) else () for d in cells["differs"]]
    cells["diff"] = cells["mean"] - cells["published"]
    return _layout(_in_paper_order(cells, published))


def _in_paper_order(cells: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Datasets, classes, columns and metrics in the order the paper prints them, partial averages last."""
    ranks = {key: {value: i for i, value in enumerate(dict.fromkeys(published[key]))}
             for key in ("dataset", "anomaly_dataset", "normal_class", "model", "metric")}
    order = pd.DataFrame({
        "dataset": cells["dataset"].map(ranks["dataset"]), "anomalies": cells["anomaly_dataset"].map(
            ranks["anomaly_dataset"]), "class": cells["normal_class"].map(ranks["normal_class"]),
        "partial": cells["partial"], "column": cells["column"].map(ranks["model"]),
        "variant": cells["variant"].fillna(""), "metric": cells["metric"].map(ranks["metric"])})
    return cells.iloc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)


def _layout(cells: pd.DataFrame) -> pd.DataFrame:
    """Where each cell goes (`row_a`, `row_b`, `group`), as the papers lay them out: one metric -> rows
    (dataset, class), a group of columns per model; several metrics (precision / recall / F1) -> rows
    (dataset, model), a group per metric. A model with runs of several settings gets a group (or row) for
    each, named by the differing keys."""
    variants = cells.dropna(subset=["variant"]).groupby("column")["variant"].nunique()
    label = [f"{c} [{v}]" if variants.get(c, 0) > 1 else c for c, v in zip(cells["column"], cells["variant"],
                                                                            strict=True)]
    datasets = [f"{d} vs {a}" if a else d for d, a in zip(cells["dataset"], cells["anomaly_dataset"], strict=True)]
    if by_metric(cells):
        return cells.assign(row_a=datasets, row_b=label, group=[METRIC_LABELS.get(m, m) for m in cells["metric"]])
    return cells.assign(row_a=datasets, row_b=cells["class_label"].replace("", "-"), group=label)


def by_metric(cells: pd.DataFrame) -> bool:
    """Whether the table is laid out with a group of columns per metric (and the models on its rows)."""
    return cells["metric"].nunique() > 1


# ------------------------------------------------------------------------------------------- the rendering


def scale(metric: str) -> float:
    """100 for the metrics the papers print in percent, else 1."""
    return 100.0 if metric in FRACTIONS else 1.0


def markers(cells: pd.DataFrame) -> dict[str, str]:
    """A footnote mark for each distinct way our runs differ from the paper settings: †, ‡, §, ¶, †5, ..."""
    found = dict.fromkeys(d for ds in cells["differs"] for d in ds)
    return {d: MARKERS[i] if i < len(MARKERS) else f"†{i + 1}" for i, d in enumerate(found)}


def _ours_text(cell, marks: dict[str, str]) -> str:
    """"90.10 ± 0.14 (n=2)†": mean ± std, the number of seeds, the marks of settings off the paper's."""
    if pd.isna(cell.mean):
        return ""
    k, n = scale(cell.metric), int(cell.n_seeds)
    # one seed has no spread; an average's spread is across classes
    spread = f" (n={n})" if n == 1 and cell.normal_class != AVERAGE else f" ± {k * cell.std:.2f} (n={n})"
    return f"{k * cell.mean:.2f}{spread}" + "".join(marks[d] for d in cell.differs)


def _published_text(cell) -> str:
    if pd.isna(cell.published):
        return ""
    k = scale(cell.metric)
    return f"{k * cell.published:.2f}" + ("" if pd.isna(cell.published_std) else f" ± {k * cell.published_std:.2f}")


def paper_pivot(cells: pd.DataFrame) -> pd.DataFrame:
    """The table as printed: two label columns, then per group "<group> ours" / "pub" / "Δ" (text)."""
    lead = ["dataset", "model" if by_metric(cells) else "class"]
    marks = markers(cells)
    lines: dict[tuple, dict] = {}
    for cell in cells.itertuples(index=False):
        line = lines.setdefault((cell.row_a, cell.row_b), dict(zip(lead, (cell.row_a, cell.row_b), strict=True)))
        line[f"{cell.group} ours"] = _ours_text(cell, marks)
        line[f"{cell.group} pub"] = _published_text(cell)
        line[f"{cell.group} Δ"] = _diff_text(cell)
    groups = list(dict.fromkeys(cells["group"]))
    columns = [*lead, *(f"{group} {part}" for group in groups for part in ("ours", "pub", "Δ"))]
    return pd.DataFrame(list(lines.values())).reindex(columns=columns).fillna("")


def _diff_text(cell) -> str:
    """Δ = ours − published in the table's unit, signed ("" where either is missing)."""
    return "" if pd.isna(cell.diff) else f"{scale(cell.metric) * cell.diff:+.2f}"


def paper_lines(cells: pd.DataFrame) -> pd.DataFrame:
    """`paper_pivot`'s cells one per line (the two label columns, then the column group: a metric or a model)
    with ours / pub / Δ: what the console prints where the pivot is wider than the screen."""
    lead = ["dataset", *(("model", "metric") if by_metric(cells) else ("class", "model"))]
    marks = markers(cells)
    return pd.DataFrame([{**dict(zip(lead, (cell.row_a, cell.row_b, cell.group), strict=True)),
                          "ours": _ours_text(cell, marks), "pub": _published_text(cell),
                          "Δ": _diff_text(cell)}
                         for cell in cells.itertuples(index=False)], columns=[*lead, "ours", "pub", "Δ"])


def caption(reference: str, cells: pd.DataFrame) -> str:
    """What the table is and how to read its three sub-columns."""
    paper, table = reference.split(":")
    metrics = ", ".join(METRIC_LABELS.get(m, m) for m in dict.fromkeys(cells["metric"]))
    unit = " (%)" if all(m in FRACTIONS for m in cells["metric"]) else ""
    protocol = table_protocol(reference)
    return (f"{paper.upper()} Table {table}: {metrics}{unit}, {protocol} protocol. Ours: mean ± std over seeds "
            f"(n seeds); pub: the paper's number; Δ = ours − published")


def footnotes(cells: pd.DataFrame) -> list[str]:
    """Which of our models each paper column holds (where the names differ), the marks of runs whose
    settings differ from the paper's, how averages are made, and the columns we have no run for."""
    notes = []
    held = cells.dropna(subset=["model"]).drop_duplicates(["column", "model"])
    for column, model in zip(held["column"], held["model"], strict=True):
        if _plain(column) != _plain(model):
            cited = f" ({CITATIONS[model]})" if model in CITATIONS else ""
            notes.append(f"{column}: our {model}{cited}")
    notes += [f"{mark} {difference}" for difference, mark in markers(cells).items()]
    if (cells["normal_class"] == AVERAGE).any() and cells.loc[cells["normal_class"] == AVERAGE, "mean"].notna().any():
        notes.append(f"{AVERAGE}: the mean over classes of our per-class means, ± the std across classes, n the "
                     f"fewest seeds of a class; compared with the paper's only when every class of the table has "
                     f"runs (else labelled with the classes it covers)")
    missing = [c for c, has in cells.groupby("column", sort=False)["mean"].apply(lambda m: m.notna().any()).items()
               if not has]
    if missing:
        notes.append(f"published only (no run of ours): {', '.join(missing)}")
    return notes


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def table_stem(out_prefix: Path, reference: str) -> Path:
    """`<prefix>_<paper>_<table>`: the files of one paper table, without their suffix."""
    from ganad_bench.results.tables import suffixed

    return suffixed(out_prefix, f"_{reference.replace(':', '_')}")


def write_paper_table(cells: pd.DataFrame, out_prefix: Path, reference: str) -> list[Path]:
    """`<prefix>_<paper>_<table>.csv` (every cell, unrounded fractions), `.md` and `.tex` (the layout, with
    the footnotes) and `.png` (ours beside the published numbers)."""
    from ganad_bench.atomic import write_atomic
    from ganad_bench.results.table_plots import bar_chart
    from ganad_bench.results.tables import suffixed, to_latex, to_markdown

    stem = table_stem(out_prefix, reference)
    table, notes, title = paper_pivot(cells), footnotes(cells), caption(reference, cells)
    paths = [suffixed(stem, suffix) for suffix in (".csv", ".md", ".tex", ".png")]
    columns = [*KEYS[:3], "class_label", *KEYS[3:], "model", "variant", "mean", "std", "n_seeds", "published",
               "published_std", "diff", "partial"]
    listed = cells[columns].assign(differs=["; ".join(d) for d in cells["differs"]])
    markdown = f"**{title}**\n\n" + to_markdown(table) + "".join(f"\n{note}\n" for note in notes)
    write_atomic(paths[0], lambda out: listed.to_csv(out, index=False))
    write_atomic(paths[1], lambda out: out.write(markdown))
    write_atomic(paths[2], lambda out: out.write(to_latex(table, title, notes)))
    scaled = cells.assign(**{key: cells[key] * cells["metric"].map(scale)
                             for key in ("mean", "std", "published", "published_std")})
    bar_chart(scaled, paths[3], title)
    return paths


def show_paper_table(frame: pd.DataFrame, reference: str, out_prefix: Path, console) -> list[Path]:
    """Write the table's files (first: a bad --out is then the only output), print the table (stdout) and its
    footnotes, and list the files on `console`."""
    from rich.markup import escape

    from ganad_bench.results.tables import fitting, table_console

    cells = paper_cells(frame, reference)
    written = write_paper_table(cells, out_prefix, reference)
    out = table_console()
    out.print(fitting(out, caption(reference, cells), paper_pivot(cells), lambda: paper_lines(cells)))
    for note in footnotes(cells):
        out.print(escape(note), soft_wrap=True)
    for path in written:
        console.print(f"wrote {path}", soft_wrap=True)
    return written

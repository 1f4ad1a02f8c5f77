"""The reproduction report (`ganad-bench-table DIR --reproduction REPRODUCTION.md`): every published cell of
every table, ours beside it, and a status, generated from the result rows.

A cell's status:
- `within`: |ours - published| <= the published spread (its std) or 2 points, whichever is larger;
- `off`: further away; with the cause where one has been found (`gap_causes.yaml`: the evidence, a
  controlled experiment or a quoted line of the paper / the authors' code), else "cause not found", followed
  by what has been ruled out where experiments have tested a candidate that is not it;
- `not run`: no finished run of ours, and why (no experiment config, data that is not on the machine, or
  simply not run yet), with the command that runs it.
Beside each cell: the number of seeds, and the budget ("paper" when the runs have the experiment's paper
settings, else how they differ), so that a cell measured at a fraction of the paper's epochs is never read
as a reproduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import pandas as pd

from ganad_bench.results import paper
from ganad_bench.results.tables import AVERAGE, to_markdown

TOLERANCE = 0.02  # 2 points, in the fractions the published table holds
# The state before the reproduction campaign, for comparison (the earlier rows, shortened runs, since replaced):
BEFORE_CAMPAIGN = ("Before the campaign (runs at 1-30% of the papers' budgets with 1-3 seeds for most deep "
                   "cells): 227 of the 709 cells measured, 78 within tolerance.")
# a published timing (ALAD's inference ms per batch) depends on the paper's hardware: runs do not record it;
# `timings.yaml` says what the benchmark measured on this project's machine (`Timing.note`), else SPEED_CELL
TIMING = "a timing on the paper's GPU, not a detection metric"
SPEED_CELL = f"{TIMING}: `python scripts/benchmark.py` measures scoring ms per batch on this machine"
FULL_SEEDS = 10  # the papers average 10 seeds (or runs)
# datasets whose files must be fetched by hand (ganad_bench never downloads at run time): name, and whether
# the papers' networks for them need a GPU budget
FETCHED_BY_HAND = {"cifar10": ("CIFAR-10", True), "svhn": ("SVHN", True), "fashion_mnist": ("Fashion-MNIST", False),
                   "omniglot": ("Omniglot", False)}


KEYS = ("table", "dataset", "normal_class", "column", "metric")
NOT_FOUND = "cause not found yet"


@dataclass(frozen=True)
class CellSelector:
    """Published cells named by their tables and any of datasets / classes / columns / metrics (each a tuple of
    the values covered; empty: any), as the entries of `gap_causes.yaml` and `published_runs.yaml` name them."""
    table: tuple[str, ...] = ()
    dataset: tuple[str, ...] = ()
    normal_class: tuple[str, ...] = ()
    column: tuple[str, ...] = ()
    metric: tuple[str, ...] = ()

    def matches(self, reference: str, cell) -> bool:
        return reference in self.table and all(not getattr(self, key) or str(getattr(cell, key)) in getattr(self, key)
                                               for key in KEYS[1:])


@dataclass(frozen=True)
class Cause(CellSelector):
    """Why the cells it names are off (`gap_causes.yaml`), or, where `found` is false, what experiments have
    ruled out (an entry with `ruled_out:` in place of `cause:`): the cells stay counted as unexplained."""
    cause: str = ""
    evidence: str = ""
    found: bool = True

    @property
    def note(self) -> str:
        return self.cause if self.found else f"{NOT_FOUND}; ruled out: {self.cause}"


@dataclass(frozen=True)
class PublishedRuns(CellSelector):
    """How many runs the published mean of the cells it names averages, with the paper's words for it
    (`published_runs.yaml`)."""
    runs: int = 0
    quote: str = ""


@dataclass(frozen=True)
class RunCost(CellSelector):
    """What the runs of the cells it names cost on a CPU, where that is why they are not run here
    (`run_costs.yaml`): said beside the command of each such cell not run, with the measurement, and used by
    `ganad-bench-paper` to time those runs."""
    hours_per_run: float = 0.0
    cost: str = ""
    evidence: str = ""

    @property
    def note(self) -> str:
        unit = "hour" if self.hours_per_run == 1 else "hours"
        return f"about {self.hours_per_run:g} {unit} a run on one CPU core: {self.cost}"

    def covers(self, reference: str, model: str, dataset: str) -> bool:
        """Whether the runs of `model` on `dataset` make one of its cells of `reference`'s table."""
        return reference in self.table and (not self.dataset or dataset in self.dataset) and any(
            model == candidate for column in self.column for candidate, _ in column_candidates(column))


@dataclass(frozen=True)
class Timing(CellSelector):
    """ALAD's and AnoGAN's scoring time for a batch of the dataset it names, as `scripts/benchmark.py` measured
    them on this project's machine (`timings.yaml`). Runs do not record a timing, and one from other hardware
    would not compare with the paper's milliseconds; the ratio of the two, which is what the paper's table is
    about (ALAD Table IV's "Speed Up"), does."""
    batch: int = 0
    alad_ms: float = 0.0
    anogan_ms: float = 0.0
    evidence: str = ""

    def note(self, published_alad_ms: float, published_anogan_ms: float) -> str:
        return (f"{TIMING}, which runs do not record; measured on one CPU core of this project's machine, a batch "
                f"of {self.batch} scores in {self.alad_ms:g} ms with ALAD and {self.anogan_ms:,g} ms with AnoGAN: "
                f"ALAD {self.anogan_ms / self.alad_ms:,.0f}x faster, "
                f"{published_anogan_ms / published_alad_ms:,.0f}x in the paper.")


def as_values(value) -> tuple[str, ...]:
    """A yaml key's value (one, or a list of several) as a tuple of strings."""
    if value is None:
        return ()
    return tuple(str(v).strip() for v in (value if isinstance(value, list) else [value]))


def read_entries(filename: str) -> list[tuple[dict, dict]]:
    """A yaml file's entries, each as (the cells it names, as `CellSelector` fields; its other keys)."""
    import yaml

    entries = yaml.safe_load(files("ganad_bench.results").joinpath(filename).read_text()) or []
    return [({key: as_values(entry.get(key)) for key in KEYS}, entry) for entry in entries]


@cache
def known_causes() -> tuple[Cause, ...]:
    """The causes found so far, and the candidates ruled out (`ganad_bench/results/gap_causes.yaml`)."""
    entries = read_entries("gap_causes.yaml")
    for _, entry in entries:
        if ("cause" in entry) == ("ruled_out" in entry):
            raise ValueError(f"gap_causes.yaml: an entry for {entry.get('table')} needs either `cause:` or "
                             f"`ruled_out:`, not {'both' if 'cause' in entry else 'neither'}")
    return tuple(Cause(cause=str(entry["cause"] if "cause" in entry else entry["ruled_out"]).strip(),
                       evidence=str(entry["evidence"]).strip(), found="cause" in entry, **cells)
                 for cells, entry in entries)


@cache
def published_runs() -> tuple[PublishedRuns, ...]:
    """The run counts the papers state for their means (`ganad_bench/results/published_runs.yaml`)."""
    return tuple(PublishedRuns(runs=int(entry["runs"]), quote=str(entry["quote"]).strip(), **cells)
                 for cells, entry in read_entries("published_runs.yaml"))


@cache
def run_costs() -> tuple[RunCost, ...]:
    """The measured costs of the runs not made for their compute (`ganad_bench/results/run_costs.yaml`)."""
    return tuple(RunCost(hours_per_run=float(entry["hours_per_run"]), cost=str(entry["cost"]).strip(),
                         evidence=str(entry["evidence"]).strip(), **cells)
                 for cells, entry in read_entries("run_costs.yaml"))


@cache
def timings() -> tuple[Timing, ...]:
    """The benchmark's measurements beside the published timings (`ganad_bench/results/timings.yaml`)."""
    return tuple(Timing(batch=int(entry["batch"]), alad_ms=float(entry["alad_ms"]), anogan_ms=float(entry["anogan_ms"]),
                        evidence=str(entry["evidence"]).strip(), **cells)
                 for cells, entry in read_entries("timings.yaml"))


def tolerance(published_std: float) -> float:
    return max(TOLERANCE, 0.0 if pd.isna(published_std) else float(published_std))


@cache
def experiment_defaults(experiment: str, *overrides: str) -> tuple[str, str, str]:
    """The model, dataset and anomaly dataset ("" unless cross-dataset) an experiment config composes to
    when its sweep does not set them (with `overrides`)."""
    config = paper.composed_experiment(experiment, *overrides)[1]
    anomalies = config["protocol"].get("anomaly_dataset") if config["protocol"]["name"] == "cross_dataset" else None
    return config["model"]["name"], config["dataset"]["name"], anomalies or ""


@cache
def experiment_datasets(experiment: str) -> frozenset[tuple[str, str]]:
    """The (dataset, anomaly dataset) pairs an experiment's sweep runs: its swept `dataset`, or the datasets
    its swept config groups (`experiment/ama_table1_pair`) bring, or its default."""
    swept = paper.swept_values(experiment)
    if "dataset" in swept:
        return frozenset((dataset, "") for dataset in swept["dataset"])
    groups = [(key, value) for key, values in swept.items() if "/" in key for value in values]
    if groups:
        return frozenset(experiment_defaults(experiment, f"{key}={value}")[1:] for key, value in groups)
    return frozenset([experiment_defaults(experiment)[1:]])


def column_candidates(column: str) -> list[tuple[str, dict[str, str]]]:
    """(our model, the settings its runs need) for each way a paper's column is made: the model's own name,
    or an ablation variant (`published.VARIANT_ALIASES`)."""
    from ganad_bench.models.kit.catalog import available_detectors
    from ganad_bench.results.published import VARIANT_ALIASES, model_names

    found = [(model, {}) for model in available_detectors() if column in model_names(model)]
    return found + [(model, required) for model, required, aliases in VARIANT_ALIASES if column in aliases]


def runs_column(experiment: str, model: str, required: dict[str, str], dataset: str, anomalies: str) -> bool:
    """Whether the experiment's sweep has runs of `model` on `dataset` (against `anomalies`, cross-dataset)
    with the `required` settings."""
    swept = paper.swept_values(experiment)
    if model not in swept.get("model", {experiment_defaults(experiment)[0]}):
        return False
    if (dataset, anomalies) not in experiment_datasets(experiment):
        return False
    needed = {key: value for key, value in required.items() if key != "dataset.name"}
    if required.get("dataset.name", dataset) != dataset:
        return False
    settings = paper.paper_settings(experiment, model, dataset) if needed else {}
    return all(settings.get(key) == value or value in swept.get(key, ()) for key, value in needed.items())


@cache
def producing_experiment(reference: str, column: str, dataset: str, anomalies: str = "") -> str | None:
    """The experiment config whose sweep runs the paper's `column` on `dataset`: the table's own experiments
    first, then the others (the baselines' sweeps); None when no config runs it (a method we do not have)."""
    from ganad_bench.cli import group_options

    own = paper.table_experiments(reference)
    candidates = column_candidates(column)
    for experiment in [*own, *(e for e in group_options("experiment") if e not in own)]:
        if any(runs_column(experiment, model, required, dataset, anomalies) for model, required in candidates):
            return experiment
    return None


# swept keys that a cell of a table keeps all of (its seeds, its classes) or that `cell_overrides` sets first
SWEPT_PER_CELL = ("seed", "dataset.normal_class", "model", "dataset")


@cache
def cell_overrides(experiment: str, column: str, dataset: str, anomalies: str) -> tuple[str, ...]:
    """The overrides that keep an experiment's sweep to one column on one dataset where it sweeps several models,
    datasets or variants (`model=anogan`, `dataset=kdd99`, `model.params.spectral_norm=True`): the command of a
    cell not run trains that column's runs, not the whole table's (MEMGAN Table 1's ADGAN column takes hours a
    run where its other baselines take minutes)."""
    swept = paper.swept_values(experiment)
    made_by = [(model, required) for model, required in column_candidates(column)
               if runs_column(experiment, model, required, dataset, anomalies)]
    if not made_by:
        return ()
    model, required = made_by[0]
    overrides = [f"model={model}"] if len(swept.get("model", ())) > 1 else []
    if len(swept.get("dataset", ())) > 1:
        overrides.append(f"dataset={dataset}")
    variants = [key for key, values in swept.items() if len(values) > 1 and key not in SWEPT_PER_CELL]
    # a swept setting the column does not name is the paper's own (ALAD Table VII's full model: score=features)
    own = paper.paper_settings(experiment, model, dataset) if set(variants) - set(required) else {}
    chosen = {key: required.get(key, own.get(key)) for key in variants}
    return (*overrides, *(f"{key}={value}" for key, value in chosen.items() if value in swept[key]))


def not_run_reason(reference: str, column: str, dataset: str, anomalies: str, output_dir: str) -> str:
    from ganad_bench.cli import group_options

    experiment = producing_experiment(reference, column, dataset, anomalies)
    if experiment is None and anomalies and anomalies not in group_options("dataset"):
        return f"needs {anomalies} as the anomalies, a dataset ganad_bench does not load"
    if experiment is None and not column_candidates(column):
        return "a method ganad_bench does not implement"
    if experiment is None:
        return "no experiment config runs this cell"
    seeds = "" if "seed" in paper.swept_values(experiment) and len(paper.swept_values(experiment)["seed"]) >= \
        FULL_SEEDS else " 'seed=range(10)'"
    narrowed = "".join(f" {override}" for override in cell_overrides(experiment, column, dataset, anomalies))
    command = f"`ganad-bench -m experiment={experiment}{narrowed}{seeds} paths.output_dir={output_dir}`"
    fetched = [FETCHED_BY_HAND[d] for d in (dataset, anomalies) if d in FETCHED_BY_HAND]
    if fetched:
        gpu = " and a GPU" if any(big for _, big in fetched) else ""
        return f"needs the {' and '.join(name for name, _ in fetched)} files{gpu}: {command}"
    return f"not run yet: {command}"


def reproduction_cells(frame: pd.DataFrame, output_dir: str = "outputs") -> pd.DataFrame:
    """One line per published cell of every table: `paper.paper_cells`' columns, plus `reference`, `status`,
    `cause` (text), `evidence`, and `full` (the paper's settings and >= 10 seeds)."""
    parts = []
    causes, runs, costs, measured = known_causes(), published_runs(), run_costs(), timings()
    for reference in paper.table_references():
        cells = one_per_published_cell(paper.paper_cells(frame, reference))
        status, cause, evidence, full = [], [], [], []
        for cell in cells.itertuples(index=False):
            found = next((c for c in causes if c.matches(reference, cell)), None)
            if pd.isna(cell.mean):
                status.append("not run")
                cost = next((c for c in costs if c.matches(reference, cell)), None)
                timing = next((t for t in measured if t.matches(reference, cell)), None)
                if cell.metric in paper.FRACTIONS:
                    reason = not_run_reason(reference, cell.column, cell.dataset, cell.anomaly_dataset, output_dir)
                elif timing:
                    published = cells[cells["dataset"] == cell.dataset].set_index("column")["published"]
                    reason = timing.note(published["ALAD"], published["AnoGAN"])
                else:
                    reason = SPEED_CELL
                cause.append(f"{reason}; {cost.note}" if cost else reason)
                evidence.append(cost.evidence if cost else timing.evidence if timing else "")
            elif cell.metric in paper.FRACTIONS and abs(cell.diff) > tolerance(cell.published_std):
                status.append("off")
                counted = next((r.runs for r in runs if r.matches(reference, cell)), None)
                noise = seed_noise(cell, counted)
                # seed noise explains a gap before an entry that only rules candidates out
                entry = found if found and (found.found or not noise) else None
                cause.append(entry.note if entry else noise or NOT_FOUND)
                evidence.append(entry.evidence if entry else "")
            else:
                status.append("within")
                cause.append("")
                evidence.append("")
            full.append(not pd.isna(cell.mean) and not cell.differs and int(cell.n_seeds) >= FULL_SEEDS)
        parts.append(cells.assign(reference=reference, status=status, cause=cause, evidence=evidence, full=full))
    return pd.concat(parts, ignore_index=True)


def one_per_published_cell(cells: pd.DataFrame) -> pd.DataFrame:
    """The published cells, each once, in the paper's order: where runs of several settings stand beside one
    cell (a diagnostic variant, say RCGAN with the Eq. 12 score), the runs closest to the paper's settings
    (the fewest settings changed: the paper's own where there are any), then the variant with the most seeds."""
    cells = cells[cells["published"].notna()].reset_index(drop=True)
    preference = pd.DataFrame({"changed": [paper.differing_settings(d) for d in cells["differs"]],
                               "seeds": cells["n_seeds"].fillna(0)})
    best = preference.sort_values(["changed", "seeds"], ascending=[True, False], kind="stable").index
    chosen = cells.loc[best].drop_duplicates(paper.KEYS, keep="first").index
    return cells.loc[sorted(chosen)].reset_index(drop=True)


def seed_noise(cell, published_count: int | None = None) -> str:
    """The cause of a gap that the seeds explain (n >= 5 of ours): Δ within two standard errors of the
    difference of the two means. Ours contributes std / sqrt(n); a published mean the paper says averages m
    runs contributes its own std / sqrt(m), its std taken equal to ours where the paper prints none."""
    n = int(cell.n_seeds)
    if n < 5 or pd.isna(cell.std):
        return ""
    ours = float(cell.std) ** 2 / n
    theirs = 0.0
    if published_count:
        spread = float(cell.published_std) if not pd.isna(cell.published_std) else float(cell.std)
        theirs = spread ** 2 / published_count
    standard_error = (ours + theirs) ** 0.5
    if abs(cell.diff) > 2 * standard_error:
        return ""
    which = (f"our mean over {n} seeds and the published mean of {published_count} runs" if published_count
             else f"our mean over {n} seeds")
    return (f"seed noise: the published number is within two standard errors of the difference between "
            f"{which} (Δ {100 * cell.diff:+.2f}, standard error {100 * standard_error:.2f} points)")


def counts(cells: pd.DataFrame) -> dict[str, int]:
    """cells, measured, within, within at full budget, off with a cause, off without one, not run."""
    off = cells["status"] == "off"
    explained = off & ~cells["cause"].str.startswith(NOT_FOUND)
    return {"cells": len(cells), "measured": int((cells["status"] != "not run").sum()),
            "within": int((cells["status"] == "within").sum()),
            "within, paper budget, 10 seeds": int(((cells["status"] == "within") & cells["full"]).sum()),
            "off, cause found": int(explained.sum()), "off, cause not found": int((off & ~explained).sum()),
            "not run": int((cells["status"] == "not run").sum())}


def _ours(cell) -> str:
    if pd.isna(cell.mean):
        return ""
    k = paper.scale(cell.metric)
    spread = "" if int(cell.n_seeds) == 1 and cell.normal_class != AVERAGE else f" ± {k * cell.std:.2f}"
    return f"{k * cell.mean:.2f}{spread}"


def _budget(cell) -> str:
    if pd.isna(cell.mean):
        return ""
    return "; ".join(cell.differs) if cell.differs else "paper"


def table_section(reference: str, cells: pd.DataFrame, notes: dict[str, int]) -> list[str]:
    """One table's heading, counts and cells; the causes are numbered notes shared across the report."""
    lines = [f"## {paper.caption(reference, cells).split(':')[0]}", ""]
    experiments = paper.table_experiments(reference)
    if experiments:
        lines.append(f"Experiment configs: {', '.join(f'`{e}`' for e in experiments)}. "
                     + ", ".join(f"{key}: {value}" for key, value in counts(cells).items()) + ".")
        lines.append("")
    rows = []
    for cell in cells.itertuples(index=False):
        label = cell.status
        if cell.cause:
            number = notes.setdefault(cell.cause, len(notes) + 1)
            label += f" [{number}]"
        k = paper.scale(cell.metric)
        rows.append({
            "dataset": f"{cell.dataset} vs {cell.anomaly_dataset}" if cell.anomaly_dataset else cell.dataset,
            "class": cell.class_label or "-", "column": cell.column,
            "metric": paper.METRIC_LABELS.get(cell.metric, cell.metric),
            "published": paper._published_text(cell), "ours": _ours(cell),
            "seeds": "" if pd.isna(cell.mean) else str(int(cell.n_seeds)), "budget": _budget(cell),
            "Δ": "" if pd.isna(cell.diff) else f"{k * cell.diff:+.2f}", "status": label})
    lines += [to_markdown(pd.DataFrame(rows)), ""]
    return lines


def learning_curves(frame: pd.DataFrame, reference: str) -> list[str]:
    """The table's learning curves, where its runs recorded them (`trainer.curve_every`): per cell (dataset,
    class, column), the table's metric on the test split (AUROC, or F1 for the thresholded tables) and the
    normal-only validation loss after each recorded epoch, mean over the seeds (n). Reported only: no run
    was stopped or selected by them."""
    from ganad_bench.results.published import published_table
    from ganad_bench.results.tables import curve_point

    if frame.empty:
        return []
    published = published_table()
    published = published[published["reference"] == reference]
    metric = "auroc" if "auroc" in set(published["metric"]) else "f1"
    parsed = {column: curve_point(column) for column in frame.columns}
    points = {column: point for column, point in parsed.items() if point and point[0] in (metric, "val_loss")}
    if not points:
        return []
    ours = paper._our_cells(frame, published, reference, metrics=list(points))
    ours = ours[~ours["normal_class"].astype(str).str.startswith(AVERAGE)]  # per class: averages may be partial
    if ours.empty:
        return []
    lines = [f"Learning curves of {paper.METRIC_LABELS[metric]} on the test split and of the loss on normal-only "
             "validation rows, after the epochs the runs recorded (`trainer.curve_every`), mean over seeds (n); "
             "reported only, never used to stop or select:", ""]
    for shown, label in ((metric, paper.METRIC_LABELS[metric]), ("val_loss", "validation loss")):
        part = ours[[points[m][0] == shown for m in ours["metric"]]]
        if part.empty:
            continue
        rows = {}
        for cell in part.itertuples(index=False):
            epoch = points[cell.metric][1]
            key = (cell.dataset, cell.normal_class or "-", cell.column + (f" [{cell.variant}]" if cell.variant else ""))
            value = 100 * cell.mean if shown == metric else cell.mean
            rows.setdefault(key, {})[epoch] = f"{value:.2f} ({int(cell.n_seeds)})"
        epochs = sorted({e for row in rows.values() for e in row})
        table = pd.DataFrame([{"dataset": d, "class": c, "column": col, "curve": label,
                               **{f"epoch {e}": row.get(e, "") for e in epochs}} for (d, c, col), row in rows.items()])
        lines += [to_markdown(table), ""]
    return lines


def render(cells: pd.DataFrame, command: str, code_versions: list[str],
           curves: dict[str, list[str]] | None = None, moved: int = 0) -> str:
    """The whole report: how it was made, the counts per table and overall, each table (with its learning
    curves, `curves`: lines per table), the numbered notes."""
    summary = pd.DataFrame([{"table": reference, **counts(group)}
                            for reference, group in cells.groupby("reference", sort=False)])
    total = {"table": "all", **counts(cells)}
    summary = pd.concat([summary, pd.DataFrame([total])], ignore_index=True).astype(str)
    head = [
        "# Reproduction report", "",
        f"Generated from the result rows by `{command}` (code versions of the rows: "
        f"{', '.join(code_versions) or 'none'}). Do not edit by hand: rerun the command."
        + (f" {moved} of the runs behind the cells moved between a GPU and the CPU (resumed from a checkpoint "
           "written on the other: their batch order was reseeded there, nothing else changed; "
           "`resumed_from.device_moves` in their rows)." if moved else ""), "",
        "Every published cell of the five papers' tables, ours beside it: mean ± std over seeds (percent for "
        "the detection metrics), the number of seeds, the budget (`paper`: the runs have the settings of the "
        "table's experiment config, which are the paper's; else how they differ), Δ = ours − published, and "
        f"a status: **within** the published spread or {100 * TOLERANCE:.0f} points, **off** (with the cause "
        "where one was found, backed by the experiment or quote in the note, else what experiments have ruled "
        "out), or **not run** (and why). "
        "Settings come from the papers (`conf/model/`, `conf/dataset_model/`, `conf/experiment/`); where a paper "
        "is silent the config names what was taken instead (another table of the paper's lineage, the reference "
        "code) or says it is our choice and why; nothing is chosen on test labels.", "",
        to_markdown(summary), "", BEFORE_CAMPAIGN, ""]
    notes: dict[str, int] = {}
    body = []
    for reference, group in cells.groupby("reference", sort=False):
        body += table_section(reference, group, notes) + (curves or {}).get(reference, [])
    evidence = dict(zip(cells["cause"], cells["evidence"], strict=True))
    tail = ["## Notes", ""] + [f"{number}. {cause}" + (f" Evidence: {evidence[cause]}" if evidence.get(cause) else "")
                               for cause, number in notes.items()]
    return "\n".join([*head, *body, *tail]) + "\n"


def code_versions(frame: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """The code versions of the rows that stand in a reported cell (`standing_rows`)."""
    return sorted(set(standing_rows(frame, cells)["code_version"]))


def moved_runs(frame: pd.DataFrame, cells: pd.DataFrame) -> int:
    """How many of the rows that stand in a reported cell moved between devices (`tables.moved_devices`)."""
    standing = standing_rows(frame, cells).drop_duplicates(["protocol", "dataset", "anomaly_dataset", "model",
                                                            "variant", "normal_class", "seed"])
    return int(standing["moved_devices"].sum()) if "moved_devices" in standing else 0


def standing_rows(frame: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The rows that stand in a reported cell: rows of a setting no cell shows (a diagnostic variant beside the
    paper's settings, `one_per_published_cell`) do not."""
    measured = cells[cells["mean"].notna()]
    if frame.empty or measured.empty:
        return frame.iloc[:0] if not frame.empty else pd.DataFrame(columns=["code_version"])
    protocols = [paper.table_protocol(reference) for reference in measured["reference"]]
    keys = ["dataset", "anomaly_dataset", "model", "variant"]
    shown = measured[keys].assign(protocol=protocols, normal_class=measured["normal_class"].astype(str))
    shown = shown.drop_duplicates()
    # an average cell stands on every class of its runs
    every_class = shown[shown["normal_class"].str.startswith(AVERAGE)].drop(columns="normal_class")
    per_class = shown[~shown["normal_class"].str.startswith(AVERAGE)]
    rows = frame.assign(normal_class=frame["normal_class"].astype(str))
    return pd.concat([rows.merge(per_class, on=["protocol", *keys, "normal_class"]),
                      rows.merge(every_class.drop_duplicates(), on=["protocol", *keys])])


def write_report(frame: pd.DataFrame, path, command: str, output_dir: str) -> dict[str, int]:
    """Write the report to `path` (atomically) and return the overall counts."""
    from ganad_bench.atomic import write_atomic

    cells = reproduction_cells(frame, output_dir)
    curves = {reference: learning_curves(frame, reference) for reference in paper.table_references()}
    text = render(cells, command, code_versions(frame, cells), curves, moved_runs(frame, cells))
    write_atomic(Path(path), lambda handle: handle.write(text))
    return counts(cells)

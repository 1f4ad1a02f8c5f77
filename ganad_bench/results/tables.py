"""Result rows -> the papers' tables: (dataset, normal class) x model, mean ± std over seeds, the
published number and the difference beside ours, plus the average row that the one-class tables print.

Outputs: a long CSV (one line per cell, every number unrounded), and Markdown / LaTeX / rich renderings
of the pivot, in percent as most of the papers print them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ganad_bench.config import BOOKKEEPING_TRAINER_KEYS, without_inert_trainer_keys
from ganad_bench.results.published import lookup

IDENTITY_COLUMNS = ["protocol", "dataset", "anomaly_dataset", "normal_class", "model", "variant"]
AVERAGE = "average"
# Config keys that tell runs of one cell apart rather than making a different method.
# keys that never change a result (bookkeeping, progress, chunking, checkpoint cadence)
NOT_A_VARIANT = ("seed", "force", "paths.", "plots", "logger", "optimize", "dataset.normal_class",
                 "protocol.anomaly_dataset", "protocol.anomaly_class",
                 *(f"trainer.{key}" for key in BOOKKEEPING_TRAINER_KEYS))


def flatten_config(config: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in (config or {}).items():
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def with_added_defaults(settings: dict[str, str]) -> dict[str, str]:
    """A row's flattened settings with the protocol keys, model parameters and trainer keys added after runs
    were made (`store.HASHED_WHEN_SET`, `config.ADDED_MODEL_PARAMS`, `config.ADDED_TRAINER_DEFAULTS`) set to
    their default where the row predates them (it behaved as the default): one setting, one cell."""
    from ganad_bench.config import ADDED_MODEL_PARAMS, ADDED_TRAINER_DEFAULTS
    from ganad_bench.data.protocols import PROTOCOL_KEYS
    from ganad_bench.results.store import HASHED_WHEN_SET

    reads = PROTOCOL_KEYS.get(settings.get("protocol.name", ""), ())
    added = {f"protocol.{key}": str(default) for key, default in HASHED_WHEN_SET.items() if key in reads}
    added |= {f"model.params.{key}": str(default)
              for key, default in ADDED_MODEL_PARAMS.get(settings.get("model.name", ""), {}).items()}
    if any(key.startswith("trainer.") for key in settings):
        added |= {f"trainer.{key}": str(default) for key, default in ADDED_TRAINER_DEFAULTS.items()}
    return {**added, **settings}


def moved_devices(resumed_from: dict | None) -> bool:
    """Whether a run resumed from a checkpoint written on another kind of device (GPU / CPU): its batch order
    was reseeded there (`training.engine.set_rng_states`). `written_on`: the rows of one earlier version."""
    return bool(resumed_from and (resumed_from.get("device_moves") or resumed_from.get("written_on")))


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Finished (status ok) rows flattened to one line per run: identity columns, seed, metrics.

    Runs of the same model on the same dataset with different settings (say `dataset.scaler=none` and
    `minmax`) are never averaged together: `variant` names the config keys in which they differ."""
    records, settings = [], []
    for row in rows:
        if row.get("status") != "ok":
            continue
        record = {key: row.get(key) for key in [*IDENTITY_COLUMNS[:-1], "seed"]}
        # rows from before code versions were recorded have only the commit
        record["code_version"] = str(row.get("code_version") or (row.get("git_revision") or "unknown")[:12])
        record["normal_class"] = "" if record["normal_class"] is None else str(record["normal_class"])
        record["anomaly_dataset"] = record["anomaly_dataset"] or ""  # set by cross_dataset only
        record["moved_devices"] = moved_devices(row.get("resumed_from"))
        record.update(row.get("metrics", {}))
        record.update(curve_columns(row.get("learning_curve")))
        records.append(record)
        ignored = NOT_A_VARIANT if counts_its_trainer(row) else (*NOT_A_VARIANT, "trainer.")
        flat = flatten_config(without_inert_trainer_keys(row.get("config") or {}))
        settings.append(with_added_defaults({k: v for k, v in flat.items() if not k.startswith(ignored)}))
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    # the run's settings, for matching ablation cells of the published tables (`published.model_names`)
    frame["settings"] = [json.dumps(one, sort_keys=True) for one in settings]
    frame["variant"] = ""
    for _, group in frame.groupby(["protocol", "dataset", "model"]).groups.items():
        varying = sorted({k for i in group for k in settings[i]
                          if len({settings[j].get(k) for j in group}) > 1})
        for i in group:
            # a run whose sweep picked settings on test labels is always labelled so, in every table
            marked = varying + (["allow_test_selection"] if settings[i].get("allow_test_selection") == "True"
                                and "allow_test_selection" not in varying else [])
            frame.loc[i, "variant"] = ",".join(f"{k}={settings[i].get(k)}" for k in marked)
    return frame


def counts_its_trainer(row: dict) -> bool:
    """Whether a run's trainer settings are part of what it is. Not for a classic detector (Isolation Forest
    ...), whose folder hash leaves them out (`store.identity`): its rows would otherwise be told apart by a
    `trainer.epochs` that never ran. Read from the row's own hash, so that the tables need no model code."""
    from ganad_bench.results.store import config_hash

    config = row.get("config") or {}
    return not (config.get("trainer") and row.get("config_hash") == config_hash(config, trains_networks=False))


CURVE_PREFIX = "curve:"


def curve_columns(points: list[dict] | None) -> dict[str, float]:
    """A row's learning curve (`trainer.curve_every`) as frame columns `curve:<metric>@<epoch>`, so that a
    curve point is summarised over seeds like any metric (`reproduction.learning_curves`)."""
    return {f"{CURVE_PREFIX}{key.removeprefix('test_')}@{int(point['epoch'])}": value for point in points or ()
            for key, value in point.items() if key.startswith("test_") or key == "val_loss"}


def curve_point(column: str) -> tuple[str, int] | None:
    """(metric, epoch) of a `curve_columns` name, None for any other column."""
    if not str(column).startswith(CURVE_PREFIX):
        return None
    metric, epoch = column.removeprefix(CURVE_PREFIX).rsplit("@", 1)
    return metric, int(epoch)


def _class_order(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def summarize(frame: pd.DataFrame, metrics: list[str], references: list[str] | None = None) -> pd.DataFrame:
    """Long table: one line per (protocol, dataset, class, model, metric) with mean, std (over seeds,
    ddof=1, 0 for one seed), n_seeds, the published cell and the difference (ours - published)."""
    cells = []
    for keys, group in frame.groupby(IDENTITY_COLUMNS, sort=False):
        for metric in metrics:
            if metric not in group or group[metric].isna().all():
                continue
            identity = dict(zip(IDENTITY_COLUMNS, keys, strict=True))
            cells.append(_cell(identity, metric, group[metric].dropna(), references, group["settings"].iloc[0]))
    cells += average_cells(frame, metrics, references)
    long = pd.DataFrame.from_records(cells)
    if long.empty:
        return long
    long["_order"] = long["normal_class"].map(lambda c: (2, 0, c) if c.startswith(AVERAGE) else _class_order(c))
    order = ["protocol", "dataset", "anomaly_dataset", "_order", "model", "metric"]
    return long.sort_values(order).drop(columns="_order")


def average_cells(frame: pd.DataFrame, metrics: list[str], references) -> list[dict]:
    """The average over normal classes, per seed, as the one-class tables print it: compared with the
    paper's average only over the dataset's complete class set (and the seeds that have every class); a
    partial set is labelled "average (k of n classes)" and has no published number beside it."""
    from ganad_bench.data.image_sources import CLASS_NAMES

    cells = []
    classwise = frame[frame["normal_class"] != ""]
    columns = [c for c in IDENTITY_COLUMNS if c != "normal_class"]
    for keys, group in classwise.groupby(columns, sort=False):
        identity = dict(zip(columns, keys, strict=True))
        n_classes = len(CLASS_NAMES.get(identity["dataset"], ())) or group["normal_class"].nunique()
        covered = group["normal_class"].nunique()
        complete_seeds = group.groupby("seed")["normal_class"].nunique() >= n_classes
        if covered >= n_classes and complete_seeds.any():
            group, label = group[group["seed"].isin(complete_seeds[complete_seeds].index)], AVERAGE
        else:  # a label no published cell carries, so nothing is compared with it
            label = f"{AVERAGE} ({covered} of {n_classes} classes)"
        per_seed = group.groupby("seed")
        for metric in metrics:
            if metric in group and group[metric].notna().any():
                cells.append(_cell({**identity, "normal_class": label}, metric, per_seed[metric].mean(), references,
                                   group["settings"].iloc[0]))
    return cells


def _cell(identity: dict, metric: str, values: pd.Series, references, settings: str) -> dict:
    published = lookup(identity["model"], identity["dataset"], metric, identity["protocol"],
                       identity["normal_class"] or None, references, identity["anomaly_dataset"] or None,
                       json.loads(settings))
    mean = float(values.mean())
    return {
        **identity,
        "metric": metric,
        "mean": mean,
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "n_seeds": int(len(values)),
        "reference": published["reference"] if published else "",
        "published": published["mean"] if published else math.nan,
        "published_std": (published["std"] if published and published["std"] is not None else math.nan),
        "diff": mean - published["mean"] if published else math.nan,
    }


def per_anomaly_class(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per protocol, the rows that hold `auroc_vs_<class>` (`metrics.auroc_per_anomaly_class`): one line per
    (dataset, normal class, model [variant]), the number of seeds, the AUROC, and one column per anomalous class
    with the AUROC of the normal test samples against that class alone, in percent, means over the seeds."""
    from ganad_bench.metrics import PER_CLASS_PREFIX

    columns = sorted((c for c in frame.columns if str(c).startswith(PER_CLASS_PREFIX)),
                     key=lambda c: _class_order(c.removeprefix(PER_CLASS_PREFIX)))
    if not columns:
        return {}
    part = frame.dropna(subset=columns, how="all")
    tables = {}
    keys = ["protocol", "dataset", "normal_class", "model", "variant"]
    for protocol, rows in part.groupby("protocol", sort=False):
        lines = []
        for (_, dataset, normal_class, model, variant), group in rows.groupby(keys, sort=False):
            means = group[["auroc", *columns]].mean()
            label = f"{model}[{variant}]" if variant else model
            lines.append({"dataset": dataset, "class": normal_class, "model": label, "seeds": str(len(group)),
                          **{("AUROC" if c == "auroc" else f"vs {c.removeprefix(PER_CLASS_PREFIX)}"):
                             "" if math.isnan(v) else f"{100 * v:.1f}" for c, v in means.items()}})
        table = pd.DataFrame(lines)
        table["_order"] = table["class"].map(_class_order)
        tables[protocol] = table.sort_values(["dataset", "_order", "model"]).drop(columns="_order")
    return tables


def format_ours(cell) -> str:
    """`mean ± std` in percent; one seed has no spread: `mean (n=1)`."""
    if int(cell["n_seeds"]) < 2:
        return f"{100 * cell['mean']:.2f} (n={int(cell['n_seeds'])})"
    return f"{100 * cell['mean']:.2f} ± {100 * cell['std']:.2f}"


def _labelled(long: pd.DataFrame, metric: str, protocol: str) -> pd.DataFrame:
    """The cells of one metric and protocol, each labelled by its model and the settings that set its runs apart."""
    part = long[(long["metric"] == metric) & (long["protocol"] == protocol)]
    return part.assign(label=[f"{m}[{v}]" if v else m for m, v in zip(part["model"], part["variant"], strict=True)])


def _by_cell(part: pd.DataFrame):
    """(dataset label, class label, the cell's rows) per (dataset, anomaly source, class), in the rows' order."""
    for (dataset, anomalies, normal_class), group in part.groupby(["dataset", "anomaly_dataset", "normal_class"],
                                                                 sort=False):
        yield f"{dataset} vs {anomalies}" if anomalies else dataset, normal_class or "-", group


def _beside(row, name: str = "") -> dict[str, str]:
    """Ours, the published number and the difference of one cell, in percent ("" where absent), as the columns
    `name`, `name pub`, `name Δ` (`ours`, `pub`, `Δ` without a name)."""
    prefix = f"{name} " if name else ""
    return {name or "ours": "" if row is None else format_ours(row),
            f"{prefix}pub": "" if row is None or math.isnan(row["published"]) else f"{100 * row['published']:.2f}",
            f"{prefix}Δ": "" if row is None or math.isnan(row["diff"]) else f"{100 * row['diff']:+.2f}"}


def pivot(long: pd.DataFrame, metric: str, protocol: str) -> pd.DataFrame:
    """Rows (dataset, class) x columns (model: ours / published / Δ), formatted in percent."""
    part = _labelled(long, metric, protocol)
    models = sorted(part["label"].unique())
    lines = []
    for dataset, normal_class, group in _by_cell(part):
        line = {"dataset": dataset, "class": normal_class}
        by_model = {row["label"]: row for _, row in group.iterrows()}
        for model in models:
            line.update(_beside(by_model.get(model), model))
        lines.append(line)
    return pd.DataFrame(lines)


def one_line_per_model(long: pd.DataFrame, metric: str, protocol: str) -> pd.DataFrame:
    """`pivot`'s cells, one line per (dataset, class, model) with columns ours / pub / Δ: what the console
    prints where the pivot, a column group per model, is wider than the screen."""
    lines = []
    for dataset, normal_class, group in _by_cell(_labelled(long, metric, protocol)):
        for _, row in group.sort_values("label").iterrows():
            lines.append({"dataset": dataset, "class": normal_class, "model": row["label"], **_beside(row)})
    return pd.DataFrame(lines)


def console_table(long: pd.DataFrame, metric: str, protocol: str, out):
    """The rich table `ganad-bench-table` prints: the pivot, or one line per model where it is too wide."""
    title = f"{metric.upper()} (%) · {protocol} · ours (mean ± std) | published | Δ"
    return fitting(out, title, pivot(long, metric, protocol), lambda: one_line_per_model(long, metric, protocol))


def fitting(out, title: str, wide: pd.DataFrame, one_per_line, keys: int = 3):
    """`wide` as a rich table where it fits `out`'s width, else `one_per_line()` (a frame whose first `keys`
    columns say what each line is): a pivot of many column groups would squeeze every column to an ellipsis."""
    from rich.measure import Measurement

    table = to_rich(wide, title)
    natural = Measurement.get(out, out.options.update_width(10 ** 6), table).maximum  # unclamped by the screen
    return table if natural <= out.width else to_rich(one_per_line(), title, keys=keys)


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


# every character LaTeX treats specially in text (escaped one character at a time, so that no
# replacement is escaped again), and the symbols the tables print
LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
                 ">": r"\textgreater{}", "±": r"$\pm$", "Δ": r"$\Delta$", "†": r"\dag{}", "‡": r"\ddag{}",
                 "§": r"\S{}", "¶": r"\P{}"}
# the sub-columns of a model's group of columns, by the suffix of their names (`pivot`, `paper.paper_pivot`)
GROUP_PARTS = {"ours": "ours", "pub": "published", "Δ": "Δ"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def column_groups(columns: list[str], lead: int = 2) -> list[tuple[str, list[str]]]:
    """The columns after the `lead` label columns, grouped by model: ("IF", ["ours", "pub", "Δ"]) from
    "IF ours" / "IF pub" / "IF Δ" (a column without a known suffix is its group's "ours")."""
    groups: list[tuple[str, list[str]]] = []
    for column in columns[lead:]:
        name, _, part = column.rpartition(" ")
        if part not in GROUP_PARTS or not name:
            name, part = column, "ours"
        if groups and groups[-1][0] == name:
            groups[-1][1].append(part)
        else:
            groups.append((name, [part]))
    return groups


def to_latex(table: pd.DataFrame, caption: str, notes: list[str] | tuple[str, ...] = ()) -> str:
    """A booktabs table with one header group per model (ours / published / Δ) and `notes` below it."""
    columns = [str(c) for c in table.columns]
    groups = column_groups(columns)
    spec = "ll" + "".join("r" * len(parts) for _, parts in groups)
    tops, rules, start = [], [], 3
    for name, parts in groups:
        tops.append(rf"\multicolumn{{{len(parts)}}}{{c}}{{{latex_escape(name)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + len(parts) - 1}}}")
        start += len(parts)
    subs = [latex_escape(GROUP_PARTS[part]) for _, parts in groups for part in parts]
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(["", "", *tops]) + r" \\", " ".join(rules),
             " & ".join([*(latex_escape(c) for c in columns[:2]), *subs]) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(str(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {latex_escape(note)}" for note in notes]
    return "\n".join([*lines, r"\end{table}"]) + "\n"


def table_console():
    """The console the tables print on: stdout, never squeezed below a readable width when piped."""
    from rich.console import Console

    out = Console(emoji=False)  # a column or class name such as "memgan:x:" prints as written
    return out if out.is_terminal else Console(width=220, emoji=False)


def to_rich(table: pd.DataFrame, title: str, keys: int = 2):
    """A rich table of `table`: the first `keys` columns (what a line is) left-aligned, the numbers right-aligned,
    published numbers dim, differences green (>= -3 points) or red."""
    from rich.markup import escape
    from rich.table import Table

    rich_table = Table(title=title, header_style="bold")
    for index, column in enumerate(table.columns):
        rich_table.add_column(escape(column), justify="left" if index < keys else "right",
                              style="dim" if column == "pub" or column.endswith(" pub") else None)
    for row in table.itertuples(index=False):
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            value = escape(str(value))
            if (column == "Δ" or column.endswith(" Δ")) and value:
                value = f"[{'green' if float(value) >= -3.0 else 'red'}]{value}[/]"
            cells.append(value)
        rich_table.add_row(*cells)
    return rich_table


def metric_names(frame: pd.DataFrame) -> list[str]:
    """The metrics the rows hold (the keys of their `metrics`), learning-curve points aside."""
    bookkeeping = {*IDENTITY_COLUMNS, "seed", "code_version", "settings", "moved_devices"}
    return sorted(c for c in frame.columns if c not in bookkeeping and curve_point(c) is None)


def default_metrics(frame: pd.DataFrame) -> list[str]:
    """F1 (then precision, recall) where thresholded metrics exist, else AUROC: what the papers print."""
    return ["f1", "precision", "recall"] if "f1" in frame and frame["f1"].notna().any() else ["auroc"]


def suffixed(stem: Path, suffix: str) -> Path:
    """`stem` + `suffix` (".csv", "_tabular_f1"): the name of one of a prefix's files, its own dots kept
    (`with_suffix` would turn --out tables/v1.2 into tables/v1.csv, and every table of it into one v1.md)."""
    return stem.parent / (stem.name + suffix)


def write_tables(long: pd.DataFrame, out_prefix: Path, metrics: dict[str, list[str]]) -> list[Path]:
    """`<prefix>.csv` (long, every cell) plus `<prefix>_<protocol>_<metric>.md/.tex` per pivot: the metrics
    of each protocol (`metrics[protocol]`) that its cells hold."""
    from ganad_bench.atomic import write_atomic

    written = [write_atomic(suffixed(out_prefix, ".csv"), lambda out: long.to_csv(out, index=False))]
    for protocol in long["protocol"].unique():
        for metric in metrics.get(protocol, []):
            table = pivot(long, metric, protocol)
            if table.empty:
                continue
            stem = suffixed(out_prefix, f"_{protocol}_{metric}")
            caption = f"{metric.upper()} (%) under the {protocol} protocol: ours (mean ± std over seeds), " \
                      f"published, and the difference"
            texts = {".md": f"**{caption}**\n\n" + to_markdown(table), ".tex": to_latex(table, caption)}
            for suffix, text in texts.items():
                written.append(write_atomic(suffixed(stem, suffix), lambda out, text=text: out.write(text)))
    return written

"""Thin entry points. `ganad-bench` (Hydra app around `run.run`) and `ganad-bench-table`."""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ganad_bench import config as _config  # noqa: F401  (registers the config resolvers)
from ganad_bench.console import console
from ganad_bench.errors import GanadError

CONFIG_GROUPS = ("model", "dataset", "protocol", "trainer", "paths", "experiment")
_failed_runs: list[str] = []


def config_dir() -> Path:
    return Path(str(files("ganad_bench.conf")))


def group_options(group: str) -> list[str]:
    folder = config_dir() / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_group_choices(argv: list[str]) -> None:
    """Reject an unknown `model=`/`dataset=`/... choice with a one-line message before Hydra starts."""
    for token in argv:
        key, sep, value = token.lstrip("+~").partition("=")
        if not sep or key not in CONFIG_GROUPS or "(" in value or value in ("", "null"):
            continue
        options = group_options(key)
        for choice in value.split(","):
            if choice not in options and not (config_dir() / key / f"{choice}.yaml").is_file():
                raise GanadError(f"unknown {key} '{choice}': choose one of {', '.join(options)}")


@hydra.main(config_path="pkg://ganad_bench.conf", config_name="config", version_base=None)
def _hydra_entry(cfg: DictConfig) -> None:
    from ganad_bench.run import run  # imported here so `--help` stays fast

    try:
        row = run(cfg, job_dir=HydraConfig.get().runtime.output_dir)
    except GanadError as err:
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        raise SystemExit(1) from None
    console.print(summary_line(row), soft_wrap=True)
    if row["status"] != "ok":
        _failed_runs.append(row["result_path"])


def summary_line(row: dict) -> str:
    """One concise line per run: what ran, the headline metric beside the published one, where it went."""
    from ganad_bench.results.published import lookup
    from ganad_bench.results.tables import flatten_config

    what = f"{row['model']} · {row['dataset']}"
    if row.get("normal_class") is not None:
        what += f" class {row['normal_class']}"
    what += f" · {row['protocol']} · seed {row['seed']}"
    if row.get("skipped"):
        return f"[yellow]skip[/] {what}: already finished (force=true reruns it) → {row['result_path']}"
    if row["status"] != "ok":
        return f"[bold red]{row['status']}[/] {what}: {row.get('error', '')} → {row['result_path']}"
    metrics = row["metrics"]
    headline = "f1" if "f1" in metrics else "auroc"
    names = [headline, *(name for name in ("auroc", "auprc") if name != headline)]
    parts = [f"{name.upper()} {metrics[name]:.4f}" for name in names if name in metrics]
    published = lookup(row["model"], row["dataset"], headline, row["protocol"], row.get("normal_class"),
                       anomaly_dataset=row.get("anomaly_dataset"), settings=flatten_config(row.get("config") or {}))
    if published:
        parts[0] += (f" [dim](published {published['reference']} {published['mean']:.4f}, "
                     f"Δ {metrics[headline] - published['mean']:+.4f})[/]")
    return f"[green]ok[/] {what}: {' · '.join(parts)} · {row['timings']['total_s']:.1f} s → {row['result_path']}"


def main() -> None:
    try:
        check_group_choices(sys.argv[1:])
    except GanadError as err:
        console.print(f"[bold red]error:[/] {err}", soft_wrap=True)
        raise SystemExit(2) from None
    try:
        _hydra_entry()
    except KeyboardInterrupt:
        # the interrupted run wrote nothing; finished runs are kept and skipped next time
        console.print("[yellow]interrupted[/]: run the same command again to finish only the missing runs")
        raise SystemExit(130) from None
    if _failed_runs:
        console.print(f"[bold red]{len(_failed_runs)} run(s) did not finish[/]: see their result.json")
        raise SystemExit(1)


def table_main(argv: list[str] | None = None) -> None:
    """`ganad-bench-table [DIR ...]`: our rows beside the published numbers."""
    from ganad_bench.results.store import iter_results
    from ganad_bench.results.tables import default_metrics, pivot, rows_frame, summarize, to_rich, write_tables

    parser = argparse.ArgumentParser(prog="ganad-bench-table", description=table_main.__doc__)
    parser.add_argument("folders", nargs="*", type=Path, default=[Path("outputs/results")],
                        help="folders searched recursively for result.json (default: outputs/results)")
    parser.add_argument("--metric", action="append", help="metric to tabulate (repeatable; default: "
                        "f1, precision, recall for tabular rows, auroc otherwise)")
    parser.add_argument("--reference", action="append", metavar="PAPER:TABLE",
                        help="published table(s) to compare with, in order of preference, e.g. alad:II")
    parser.add_argument("--out", type=Path, default=Path("outputs/tables/table"),
                        help="output prefix: writes PREFIX.csv and PREFIX_<protocol>_<metric>.md/.tex")
    args = parser.parse_args(argv)

    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        console.print(f"[bold red]error:[/] no such folder: {', '.join(missing)} (run ganad-bench first)")
        raise SystemExit(2)
    frame = rows_frame(iter_results(args.folders))
    if frame.empty:
        console.print(f"[bold red]error:[/] no finished result.json under {', '.join(map(str, args.folders))}")
        raise SystemExit(1)
    metrics = args.metric or default_metrics(frame)
    long = summarize(frame, metrics, args.reference)
    from rich.console import Console

    # the table is the command's output: stdout, never squeezed below a readable width when piped
    out = Console()
    if not out.is_terminal:
        out = Console(width=220)
    for protocol in long["protocol"].unique():
        table = pivot(long, metrics[0], protocol)
        out.print(to_rich(table, f"{metrics[0].upper()} (%) · {protocol} · ours (mean ± std) | published | Δ"))
    for path in write_tables(long, args.out, metrics):
        console.print(f"wrote {path}")

"""What a run costs: each finished run's share of the machine (`run_seconds`), a rough time for the runs a table
still misses (`time_estimate`, printed by `ganad-bench-paper`), and the reference times shipped for a fresh
output folder (`run_times.csv`, made from the project's own runs by `python scripts/run_times.py`).

A run's time is its row's `timings.total_s` (loading, training, scoring) over the number of runs that shared
the machine with it; a deep model's time is taken to grow with its epochs (a run planned at 100 epochs is timed
from runs of 100 epochs, else scaled from the runs of the nearest epoch count), a classic detector's does not.
"""

from __future__ import annotations

import csv
import io
import math
from bisect import bisect_left
from collections import Counter
from datetime import datetime
from functools import cache
from pathlib import Path

RUN_TIMES = Path(__file__).with_name("run_times.csv")
RUN_TIMES_FIELDS = ("model", "dataset", "epochs", "runs", "seconds_per_run")
# where the shipped times were measured (said beside every estimate taken from them)
REFERENCE_MACHINE = "the project's runs on one core of a 2-core CPU machine (run_times.csv)"

# (epochs or None, seconds of one run): None for a detector whose time does not depend on a trainer
Sample = tuple["int | None", float]


def run_seconds(rows: list[dict]) -> list[tuple[dict, float]]:
    """What each finished run's training and scoring cost, as its share of the machine: a row's time over the
    number of runs that shared it (a pack's members each record the pack's whole time): the larger of its pack's
    size (`pack_members`) and the mean number of runs of its model and dataset under way while it ran (parallel
    workers; packs of rows written before rows recorded their size; runs one after another share nothing), a
    resumed run's time scaled to all its epochs; runs that only scored another's networks (`trained_by`, ALAD
    Table VII) or resumed at their last epoch are left out."""
    timed = []
    for row in rows:
        total = (row.get("timings") or {}).get("total_s")
        epochs = ((row.get("config") or {}).get("trainer") or {}).get("epochs")
        resumed_at = (row.get("resumed_from") or {}).get("epoch") or 0
        if row.get("status") != "ok" or total is None or row.get("trained_by") or (epochs and resumed_at >= epochs):
            continue
        scale = epochs / (epochs - resumed_at) if epochs and resumed_at else 1.0
        # the wall-clock span the row's `total_s` covers (this session's part of a resumed run)
        finished = datetime.fromisoformat(row["finished_at"]).timestamp() if row.get("finished_at") else None
        span = (finished - float(total), finished) if finished is not None else None
        timed.append((row, float(total) * scale, span))
    spans: dict = {}
    for row, _, span in timed:
        if span is not None:
            spans.setdefault((row["model"], row["dataset"]), []).append(span)
    for group in spans.values():
        group.sort()
    longest = {key: max(end - start for start, end in group) for key, group in spans.items()}
    shares = []
    for row, seconds, span in timed:
        key = (row["model"], row["dataset"])
        sharing = concurrency(span, spans[key], longest[key]) if span is not None else 1.0
        shares.append((row, seconds / max(sharing, int(row.get("pack_members") or 1))))
    return shares


def concurrency(span: tuple[float, float], spans: list[tuple[float, float]], longest: float) -> float:
    """The mean number of `spans` (sorted, `span` among them, none longer than `longest` seconds) under way
    during `span`: 1 for a run alone or between others, 10 for a member of a pack of 10 that started and ended
    together, 2 for a run of two parallel workers. A span shorter than a second (rows time their end to the
    second) counts as one second."""
    start, end = span
    # only spans that start less than the longest span's length before this one can reach into it
    first = bisect_left(spans, (start - longest, float("-inf")))
    overlap = 0.0
    for other_start, other_end in spans[first:]:
        if other_start >= end:
            break
        overlap += max(0.0, min(end, other_end) - max(start, other_start))
    return max(1.0, overlap / max(end - start, 1.0))


def timing_samples(rows: list[dict]) -> dict[tuple[str, str], list[Sample]]:
    """Each finished run's share of the machine (`run_seconds`) with its epoch count, by model and dataset. A
    classic detector's trainer settings never ran (`tables.counts_its_trainer`): its epochs are None."""
    from ganad_bench.results.tables import counts_its_trainer

    samples: dict = {}
    for row, seconds in run_seconds(rows):
        trainer = (row.get("config") or {}).get("trainer") or {}
        epochs = trainer.get("epochs") if counts_its_trainer(row) else None
        samples.setdefault((row["model"], row["dataset"]), []).append((epochs, seconds))
    return samples


def seconds_per_run(samples: list[Sample], epochs) -> float:
    """One run's time at `epochs` (a planned run's `trainer.epochs`): the mean of the samples at that count;
    else of those at the count nearest to it (by ratio; the larger of two as near), scaled to it; else, for a
    detector without a trainer, the mean of all."""
    same = [seconds for count, seconds in samples if count == epochs]
    if same:
        return sum(same) / len(same)
    counts = {count for count, _ in samples if count}
    if counts and epochs:
        nearest = min(counts, key=lambda count: (abs(math.log(count / epochs)), -count))
        times = [seconds for count, seconds in samples if count == nearest]
        return sum(times) / len(times) * epochs / nearest
    return sum(seconds for _, seconds in samples) / len(samples)


def time_estimate(missing: list[dict], rows: list[dict], reference: str = "", trained: list | None = None) -> str:
    """A rough time for the missing runs (configs), each timed by the first of these that measured its epoch
    count, else by the first that has it at all, scaled to its epochs: the finished rows of its model on its
    dataset; the hours a run of that column of `reference`'s table costs on one CPU core (`run_costs.yaml`, the
    runs sized for a GPU); the project's own runs of its model on its dataset (`run_times.csv`). A measurement at
    the run's own budget beats an extrapolation from a smoke run of 2 epochs, whose time is mostly loading,
    building and scoring. Else the model's runs on another dataset, scaled by how a model of like cost grew
    between the two (`scaled_from_another_dataset`), since a dataset can change a run's time a hundredfold
    (RCGAN: an epoch on Thyroid in 0.4 s, on KDD99 in a minute); else those runs unscaled, said apart. Models with
    none of these are counted as of unknown time. `trained`, per missing run, the epochs it has trained already
    (`store.trained_epochs`, None for none): only the rest of its epochs are counted."""
    from ganad_bench.results.reproduction import run_costs

    ours = timing_samples(rows)
    by_model: dict = {}
    for (model, _), samples in ours.items():
        by_model.setdefault(model, []).extend(samples)
    shipped = reference_samples()
    pool = {**shipped, **ours}
    scaled = "from the model's runs on another dataset, scaled by a model of like cost timed on both"
    other_datasets = "from the model's runs on other datasets"
    sources = {"from finished runs' timings": 0.0, "measured on one CPU core (run_costs.yaml)": 0.0,
               f"from {REFERENCE_MACHINE}": 0.0, scaled: 0.0, other_datasets: 0.0}
    counts, untimed = Counter(), Counter()
    for config, done in zip(missing, trained or [None] * len(missing), strict=True):
        model, dataset = config["model"]["name"], config["dataset"]["name"]
        epochs = (config.get("trainer") or {}).get("epochs")
        left = max(0.0, 1 - done / epochs) if done and epochs else 1.0
        cost = next((c for c in run_costs() if c.covers(reference, model, dataset)), None)
        timed = [(source, samples) for source, samples in zip(list(sources)[:3], (
            ours.get((model, dataset)), [(epochs, cost.hours_per_run * 3600)] if cost else None,
            shipped.get((model, dataset))), strict=True) if samples]
        at_budget = [(source, samples) for source, samples in timed
                     if any(count is None or count == epochs for count, _ in samples)]
        if not timed and (elsewhere := scaled_from_another_dataset(model, dataset, pool)):
            timed = [(scaled, elsewhere)]
        if not timed and by_model.get(model):
            timed = [(other_datasets, by_model[model])]
        if not timed:
            untimed[model] += 1
            continue
        source, samples = (at_budget or timed)[0]
        counts[source] += 1
        sources[source] += seconds_per_run(samples, epochs) * left
    parts = [f"about {duration(seconds)} for {counts[source]} run(s), {source}"
             for source, seconds in sources.items() if counts[source]]
    if untimed:
        parts.append(f"unknown for {', '.join(f'{n} {model}' for model, n in untimed.items())} run(s) "
                     f"(no run of that model on that dataset to time them by)")
    return "; ".join(parts)


def scaled_from_another_dataset(model: str, dataset: str, pool: dict) -> list[Sample] | None:
    """`model`'s samples on another dataset, scaled to `dataset` by the ratio of a peer's times on the two: the
    peer (a model timed on both, with a trainer if `model` has one) whose time an epoch on the other dataset is
    nearest `model`'s own there, since networks of like cost grow alike with a dataset's size (RCGAN and ALAD share
    ALAD's KDD99 networks; a DAGMM epoch of one step on Thyroid grows otherwise). None without such a peer."""
    from statistics import median

    # the median time of an epoch (of a run, for a detector without a trainer), and whether it has a trainer
    cost = {key: median(seconds / (epochs or 1) for epochs, seconds in samples) for key, samples in pool.items()
            if samples}
    trained = {key: pool[key][0][0] is not None for key in cost}
    best = None
    for (own_model, other), own in cost.items():
        if own_model != model or other == dataset:
            continue
        for (peer, peer_dataset), there in cost.items():
            here = cost.get((peer, dataset))
            if peer == model or peer_dataset != other or here is None \
                    or trained[(peer, other)] != trained[(model, other)]:
                continue
            distance = abs(math.log(max(there, 1e-3) / max(own, 1e-3)))
            if best is None or distance < best[0]:
                best = (distance, here / max(there, 1e-3), pool[(model, other)])
    if best is None:
        return None
    _, ratio, samples = best
    return [(epochs, seconds * ratio) for epochs, seconds in samples]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def reference_times(rows: list[dict]) -> list[dict]:
    """The shipped reference times (`run_times.csv`) made from finished rows: per model, dataset and epoch count
    (blank for a detector without a trainer), the number of runs and the median of their shares of the machine.
    Only runs on a CPU: a run that moved from a GPU is timed by its CPU part."""
    from statistics import median

    groups: dict = {}
    for (model, dataset), samples in timing_samples([r for r in rows if r.get("device") == "cpu"]).items():
        for epochs, seconds in samples:
            groups.setdefault((model, dataset, epochs), []).append(seconds)
    return [{"model": model, "dataset": dataset, "epochs": "" if epochs is None else epochs, "runs": len(times),
             "seconds_per_run": round(median(times), 1)}
            for (model, dataset, epochs), times in sorted(groups.items(), key=lambda item: str(item[0]))]


def reference_csv(rows: list[dict]) -> str:
    """`reference_times` as the text of `run_times.csv`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=RUN_TIMES_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(reference_times(rows))
    return text.getvalue()


@cache
def reference_samples() -> dict[tuple[str, str], list[Sample]]:
    """The shipped reference times as samples by model and dataset (`run_times.csv`; none when it is absent)."""
    samples: dict = {}
    if not RUN_TIMES.is_file():
        return samples
    with RUN_TIMES.open(newline="") as handle:
        for line in csv.DictReader(handle):
            epochs = int(line["epochs"]) if line["epochs"] else None
            samples.setdefault((line["model"], line["dataset"]), []).append((epochs, float(line["seconds_per_run"])))
    return samples

"""A paper table as a bar chart: ours beside the published number in every cell, so that where a
reproduction falls short (or a column has no run yet) shows at a glance. Drawn with matplotlib's
object API on a Figure of its own (the Agg canvas): no pyplot state, no display needed."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

PANEL_COLUMNS = 3
# a bar's name is cut to this many characters (the table files beside the chart spell every name in full): a
# column's settings (`(model.params.latent_discriminator=True,...)`) would take the panel's height
LABEL_CHARS = 40


def bar_chart(cells: pd.DataFrame, path: Path, title: str) -> Path:
    """One panel per group of the table (`paper.paper_cells`: a model, or a metric), one pair of bars per
    row: ours (error bar: our std) and published (the paper's std where it gives one). The values are in
    the units printed (`mean`, `std`, `published`, `published_std`); the format follows `path`'s suffix."""
    from matplotlib.figure import Figure

    from ganad_bench.atomic import write_atomic

    groups = list(dict.fromkeys(cells["group"]))
    n_cols = min(PANEL_COLUMNS, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    widest = int(cells.groupby("group")[["row_a", "row_b"]].apply(lambda part: len(part.drop_duplicates())).max())
    # the x labels, turned 60 degrees, stand about 0.045 inch a character high at font size 6: a panel of
    # 2.8 inches with long labels had no room left for its bars, and matplotlib gave up the layout (a warning)
    label_height = 0.045 * max(map(len, tick_labels(cells)), default=0)
    figure = Figure(figsize=(n_cols * max(3.0, 0.28 * widest + 1.0), (2.2 + label_height) * n_rows + 0.6),
                    layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for axis, group in zip(axes, groups, strict=False):
        _panel(axis, cells[cells["group"] == group], group)
    for axis in axes[len(groups):]:
        axis.set_visible(False)
    # one legend for the figure, above the panels: inside a panel it covers bars, and matplotlib's search for
    # the emptiest corner ("best") is slow with many bars (a warning)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper right", fontsize=6, ncols=2)
    figure.suptitle("\n".join(textwrap.wrap(title, 160)), fontsize=7)
    fmt = Path(path).suffix.lstrip(".") or "png"
    return write_atomic(Path(path), lambda out: figure.savefig(out, format=fmt, dpi=80), binary=True)


def tick_labels(part: pd.DataFrame) -> list[str]:
    """A panel's bar names: the row's two keys (dataset and class, or dataset and column), or the first alone,
    at most `LABEL_CHARS` long."""
    names = [f"{a} {b}" if b != "-" else a for a, b in zip(part["row_a"], part["row_b"], strict=True)]
    return [name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…" for name in names]


def _panel(axis, part: pd.DataFrame, group: str) -> None:
    x = np.arange(len(part))
    for offset, (value, spread, label) in zip((-0.2, 0.2), (("mean", "std", "ours"),
                                                           ("published", "published_std", "published")), strict=True):
        axis.bar(x + offset, part[value].to_numpy(float), 0.4, yerr=part[spread].fillna(0).to_numpy(float),
                 capsize=1.5, label=label, error_kw={"elinewidth": 0.6})
    axis.set_xticks(x, tick_labels(part), rotation=60, ha="right", fontsize=6)
    axis.tick_params(axis="y", labelsize=6)
    axis.set_title("\n".join(textwrap.wrap(group, 48)), fontsize=8)  # a variant's settings run long

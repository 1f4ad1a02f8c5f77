"""Pictures of runs, drawn with matplotlib (Agg, files only): per run the ROC and precision-recall curves
and the score histograms of normal and anomalous test rows (`evaluation.png`), the losses per epoch
(`learning_curve.png`); per table cell the ROC curves of all its seeds (`plot_cell_rocs`). Image runs
also get a grid of test inputs over their reconstructions (`reconstructions.png`, `image_grid`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIGURE_DPI = 90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_evaluation(labels: np.ndarray, scores: np.ndarray, path: Path, title: str,
                    threshold: float | None = None) -> Path:
    """ROC curve, precision-recall curve and score histograms (normal vs anomalous) side by side."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    plt = _pyplot()
    labels = np.asarray(labels).astype(int)
    fig, (roc_ax, pr_ax, hist_ax) = plt.subplots(1, 3, figsize=(12, 3.6))
    fpr, tpr, _ = roc_curve(labels, scores)
    roc_ax.plot(fpr, tpr, lw=1.5, label=f"AUROC {auc(fpr, tpr):.3f}")
    roc_ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    precision, recall, _ = precision_recall_curve(labels, scores)
    pr_ax.plot(recall, precision, lw=1.5, label=f"AUPRC {average_precision_score(labels, scores):.3f}")
    pr_ax.axhline(labels.mean(), ls=":", c="grey", lw=1, label=f"anomaly ratio {labels.mean():.3f}")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall")
    bins = np.histogram_bin_edges(scores[np.isfinite(scores)], bins=50)
    hist_ax.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="normal")
    hist_ax.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="anomalous")
    if threshold is not None:
        hist_ax.axvline(threshold, c="k", ls="--", lw=1, label="threshold")
    hist_ax.set(xlabel="anomaly score", ylabel="density", title="test scores")
    # fixed corners where the curves are not: matplotlib's "best" scans every point of a curve (thousands of
    # test rows), slowly, and prints a warning to the user's terminal when it takes long
    roc_ax.legend(fontsize=8, loc="lower right")
    pr_ax.legend(fontsize=8, loc="lower left")
    hist_ax.legend(fontsize=8)  # a few dozen bars: "best" is quick
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_learning_curve(history: list[dict], curve: list[dict], path: Path, title: str) -> Path | None:
    """Every loss recorded per epoch (and the validation loss) against the epoch, with the learning curve's
    test AUROC (`curve`: the run's points, `DeepDetector.learning_curve`; `trainer.curve_every`) on a second
    axis; None without history."""
    if not history:
        return None
    plt = _pyplot()
    keys = list(dict.fromkeys(k for row in history for k in row if k.endswith("_loss")))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key in keys:
        points = [(row.get("epoch", i + 1), row[key]) for i, row in enumerate(history) if key in row]
        ax.plot(*zip(*points, strict=True), lw=1.5, label=key, marker="." if len(points) < len(history) else None)
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend(fontsize=8, loc="upper left")
    aurocs = [(point["epoch"], point["test_auroc"]) for point in curve if "test_auroc" in point]
    if aurocs:
        twin = ax.twinx()
        twin.plot(*zip(*aurocs, strict=True), color="black", ls="--", marker="o", ms=3,
                  label="test AUROC (reported only)")
        twin.set(ylabel="test AUROC")
        twin.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_cell_rocs(curves: list[tuple[str, np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """One ROC curve per (label, test labels, scores), e.g. every seed of one table cell."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for label, labels, scores in curves:
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, lw=1.2, label=f"{label} ({roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title(title, fontsize=9)  # a cell's settings may take a few lines
    ax.legend(fontsize=7, loc="lower right")  # below the ROC curves ("best" scans every point, see plot_evaluation)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    from ganad_bench.atomic import write_atomic

    plt = _pyplot()
    fig.tight_layout()
    write_atomic(Path(path), lambda out: fig.savefig(out, format="png", dpi=FIGURE_DPI), binary=True)
    plt.close(fig)
    return Path(path)

"""Evaluation metrics. Labels: 1 = anomaly (the positive class); scores: higher = more anomalous.

- AUROC and AUPRC (average precision) of the anomaly class, threshold-free.
- Precision / recall / F1 of the anomaly class when the top `contamination` fraction of test scores is
  flagged anomalous (DAGMM, ALAD Sec. V "Data setup", RCGAN Sec. 5.3). The threshold is the
  `100 * (1 - contamination)` percentile of the test scores, and a score at or above it is flagged,
  as in ALAD's evaluation code. `flagged` is the share of test rows flagged: the contamination, unless
  scores tie at the threshold (identical test rows score identically: KDD99's 10% set repeats one smurf
  record 193,081 times), when every tied row is flagged and precision falls with the excess.
- Where the test anomalies come from two original classes or more (the one-class image protocols: nine
  digits against one), `auroc_vs_<class>` is the AUROC of the normal test samples against that class's
  anomalies alone: which classes a detector tells apart from the normal one and which it takes for normal
  (a reconstruction score, say, that ranks thin, low-ink digits as normal).
"""

from __future__ import annotations

import numpy as np

# scikit-learn is imported in the functions that compute with it: the names here that only describe rows
# (`PER_CLASS_PREFIX`, `contamination_threshold`) serve a run found finished and the table commands, which
# then start without it (a second or more of CPU)


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    return float(np.percentile(scores, 100.0 * (1.0 - contamination)))


def precision_recall_f1(labels: np.ndarray, scores: np.ndarray, contamination: float) -> dict[str, float]:
    from sklearn.metrics import precision_recall_fscore_support

    predicted = (scores >= contamination_threshold(scores, contamination)).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="binary", pos_label=1, zero_division=0
    )
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "flagged": float(predicted.mean())}


def tie_warning(metrics: dict[str, float], contamination: float | None, tolerance: float = 0.01) -> str | None:
    """A line saying that ties at the threshold flagged more test rows than the contamination (by more
    than `tolerance`), or None."""
    flagged = metrics.get("flagged")
    if contamination is None or flagged is None or flagged - contamination <= tolerance:
        return None
    return (f"{100 * flagged:.1f}% of the test rows flagged, not the protocol's {100 * contamination:g}%: "
            "scores tie at the threshold and every row at or above it is flagged (ALAD's rule), so precision "
            "and F1 count the tied rows; AUROC / AUPRC are unaffected")


def evaluate(labels: np.ndarray, scores: np.ndarray, contamination: float | None = None) -> dict[str, float]:
    """All metrics of one run; the thresholded ones only when a contamination is given."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.shape[0]} scores for {labels.shape[0]} labels")
    if not np.isfinite(scores).all():
        raise FloatingPointError(f"{int((~np.isfinite(scores)).sum())} test scores are NaN or inf")
    metrics = {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
    }
    if contamination is not None:
        metrics.update(precision_recall_f1(labels, scores, contamination))
    return metrics


PER_CLASS_PREFIX = "auroc_vs_"


def auroc_per_anomaly_class(labels: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """`auroc_vs_<class>` for each class the anomalies come from (module docstring); empty where they come from
    one class only (the overall AUROC says it all). `classes[i]`: the original class of test sample i."""
    from sklearn.metrics import roc_auc_score
    labels, scores = np.asarray(labels).astype(np.int64), np.asarray(scores, dtype=np.float64)
    classes = np.asarray(classes).astype(str)
    anomalous = np.unique(classes[labels == 1])
    normal = labels == 0
    if len(anomalous) < 2 or not normal.any():
        return {}
    pairs = {name: normal | (classes == name) for name in anomalous}
    return {f"{PER_CLASS_PREFIX}{name}": float(roc_auc_score(labels[rows], scores[rows]))
            for name, rows in pairs.items()}

"""Metrics against scikit-learn and against counts done by hand."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from ganad_bench.metrics import (
    auroc_per_anomaly_class,
    contamination_threshold,
    evaluate,
    precision_recall_f1,
    tie_warning,
)


@pytest.fixture
def labelled_scores():
    rng = np.random.default_rng(0)
    labels = (rng.random(1000) < 0.2).astype(int)
    scores = rng.normal(size=1000) + 1.5 * labels
    return labels, scores


def test_threshold_metrics_equal_sklearn_on_top_k_predictions(labelled_scores):
    labels, scores = labelled_scores
    # the top 20% of scores, counted by hand
    k = int(round(0.2 * len(scores)))
    predicted = np.zeros_like(labels)
    predicted[np.argsort(-scores)[:k]] = 1
    got = precision_recall_f1(labels, scores, 0.2)
    assert got["precision"] == pytest.approx(precision_score(labels, predicted))
    assert got["recall"] == pytest.approx(recall_score(labels, predicted))
    assert got["f1"] == pytest.approx(f1_score(labels, predicted))


def test_threshold_flags_the_contamination_fraction(labelled_scores):
    _, scores = labelled_scores
    for contamination in (0.025, 0.15, 0.2):
        flagged = (scores >= contamination_threshold(scores, contamination)).mean()
        assert flagged == pytest.approx(contamination, abs=1.5 / len(scores))


def test_threshold_free_metrics_equal_sklearn(labelled_scores):
    labels, scores = labelled_scores
    got = evaluate(labels, scores, contamination=0.2)
    assert got["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert got["auprc"] == pytest.approx(average_precision_score(labels, scores))
    assert set(got) == {"auroc", "auprc", "precision", "recall", "f1", "flagged"}
    assert got["flagged"] == pytest.approx(0.2, abs=1.5 / len(scores))


def test_higher_score_means_anomaly():
    labels = np.array([0, 0, 0, 1])
    assert evaluate(labels, np.array([0.1, 0.2, 0.3, 0.9]))["auroc"] == 1.0
    assert evaluate(labels, -np.array([0.1, 0.2, 0.3, 0.9]))["auroc"] == 0.0


def test_without_contamination_only_threshold_free_metrics():
    assert set(evaluate(np.array([0, 1]), np.array([0.0, 1.0]))) == {"auroc", "auprc"}


def test_nan_scores_are_rejected():
    with pytest.raises(FloatingPointError):
        evaluate(np.array([0, 1]), np.array([0.0, np.nan]))


def test_rows_that_tie_at_the_threshold_are_all_flagged_and_say_so():
    """Identical test rows score identically (KDD99 repeats one record 193,081 times): when such a block
    straddles the percentile, the rule "at or above it" (ALAD's code) flags the whole block."""
    labels = np.array([1] * 10 + [0] * 90)
    scores = np.concatenate([np.linspace(5, 6, 10), np.full(40, 4.0), np.linspace(0, 1, 50)])
    got = evaluate(labels, scores, contamination=0.2)
    assert got["flagged"] == 0.5  # the top 10 and the 40 tied rows
    assert got["precision"] == pytest.approx(10 / 50) and got["recall"] == 1.0
    assert got["auroc"] == 1.0  # the ranking is untouched
    line = tie_warning(got, 0.2)
    assert line.startswith("50.0% of the test rows flagged, not the protocol's 20%: scores tie")
    assert tie_warning(evaluate(labels, np.linspace(0, 1, 100), contamination=0.2), 0.2) is None
    assert tie_warning(got, None) is None


def test_auroc_per_anomaly_class_is_sklearns_on_the_normals_and_that_class_alone():
    rng = np.random.default_rng(1)
    classes = rng.choice(["1", "3", "8"], size=600)  # "8" is the normal class
    labels = (classes != "8").astype(int)
    scores = rng.normal(size=600) + np.where(classes == "3", 2.0, 0.0) - np.where(classes == "1", 1.0, 0.0)
    got = auroc_per_anomaly_class(labels, scores, classes)
    assert sorted(got) == ["auroc_vs_1", "auroc_vs_3"]
    for name in ("1", "3"):
        rows = classes != ("3" if name == "1" else "1")
        assert got[f"auroc_vs_{name}"] == pytest.approx(roc_auc_score(labels[rows], scores[rows]))
    assert got["auroc_vs_1"] < 0.5 < got["auroc_vs_3"]  # the class taken for normal, the one told apart
    order = rng.permutation(600)  # independent of the test order
    assert auroc_per_anomaly_class(labels[order], scores[order], classes[order]) == pytest.approx(got)


def test_auroc_per_anomaly_class_is_empty_where_the_anomalies_are_one_class():
    labels = np.array([0, 0, 1, 1])
    assert auroc_per_anomaly_class(labels, np.arange(4.0), np.array(["a", "a", "b", "b"])) == {}
    assert auroc_per_anomaly_class(np.ones(3), np.arange(3.0), np.array(["a", "b", "c"])) == {}  # no normals

"""scripts/ink_check.py: the ink baseline against a published one-class row (the evidence of AMA Table 2's
FGAN gap note): its AUROCs are scikit-learn's on the official test split, the published row is read by class,
and the runs' learning curves are gathered per epoch over complete class sets only."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ganad_bench.errors import ConfigError
from tests.conftest import load_script
from tests.test_image_data import write_idx_set


@pytest.fixture(scope="module")
def ink_check():
    return load_script("ink_check")


def test_ink_aurocs_are_sklearns_on_the_official_test_split(ink_check, tmp_path, monkeypatch):
    from tests.test_image_data import trust_files

    written = write_idx_set(tmp_path / "mnist", seed=3)
    trust_files(monkeypatch, tmp_path)
    got = ink_check.ink_aurocs("mnist", tmp_path)
    images, labels = written["images"]["t10k"], written["labels"]["t10k"]
    ink = images.reshape(len(images), -1).astype(np.float64).mean(axis=1)
    assert got == pytest.approx([roc_auc_score(labels != k, ink) for k in range(10)])


def test_published_row_by_class_and_a_missing_column_is_one_line(ink_check):
    row = ink_check.published_row("ama:2", "mnist", "FGAN", 10)
    assert row[0] == pytest.approx(0.754) and row[1] == pytest.approx(0.307) and len(row) == 10
    with pytest.raises(ConfigError, match="^ama:2 has no NoSuchGAN AUROC on mnist for classes") as exit_:
        ink_check.published_row("ama:2", "mnist", "NoSuchGAN", 10)
    assert "\n" not in str(exit_.value)


def test_run_curves_keep_epochs_with_every_class(ink_check, tmp_path):
    for k in range(3):
        folder = tmp_path / f"class{k}" / "seed0-abc"
        folder.mkdir(parents=True)
        curve = [{"epoch": 1, "test_auroc": 0.1 * k}] + ([{"epoch": 2, "test_auroc": 0.5}] if k else [])
        (folder / "result.json").write_text(json.dumps({
            "status": "ok", "model": "fgan", "dataset": "mnist", "protocol": "one_class", "seed": 0,
            "normal_class": str(k), "metrics": {"auroc": 0.5}, "learning_curve": curve}))
    assert ink_check.run_curves(tmp_path, 3) == {1: [0.0, 0.1, 0.2]}  # epoch 2 lacks class 0


def test_a_missing_or_curveless_runs_folder_is_a_one_line_error(ink_check, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^no such folder: .* \(give the results folder") as exit_:
        ink_check.folder_curves(tmp_path / "no_such_runs", 10)
    assert "\n" not in str(exit_.value)
    folder = tmp_path / "class0" / "seed0-abc"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({
        "status": "ok", "model": "fgan", "dataset": "mnist", "protocol": "one_class", "seed": 0,
        "normal_class": "0", "metrics": {"auroc": 0.5}, "learning_curve": [{"epoch": 1, "test_auroc": 0.4}]}))
    with pytest.raises(SystemExit) as exit_:
        ink_check.folder_curves(tmp_path, 10)
    assert exit_.value.code == 1  # a valid folder with nothing to show
    assert re.fullmatch(r"error: no finished runs under .* share a learning-curve epoch across all 10 classes: .*\n",
                        capsys.readouterr().err)

"""scripts/split_share.py: the test anomaly share a published precision / recall pair implies (the evidence of
RCGAN's KDD99 gap note), its interval over the printed digits, and the shares of candidate splits, which are
those of the protocol's own split function."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ganad_bench.data.protocols import split_rows
from ganad_bench.errors import ConfigError
from ganad_bench.metrics import evaluate
from tests.conftest import load_script


@pytest.fixture(scope="module")
def split_share():
    return load_script("split_share")


def test_the_printed_digits_give_the_rounding_interval(split_share):
    assert split_share.printed_half_unit(94.27) == pytest.approx(0.005)
    assert split_share.printed_half_unit(94.8) == pytest.approx(0.05)
    assert split_share.printed_half_unit(95.0) == pytest.approx(0.5)


def test_a_published_pair_gives_its_test_rows_anomaly_share(split_share):
    """At a fixed flagged fraction c, precision = TP / (c n) and recall = TP / (a n): a = c P / R."""
    pairs = {(p["reference"], p["column"]): p for p in split_share.implied_shares(["rcgan:1", "alad:V"], "kdd99", 0.2)}
    rcgan = pairs[("rcgan:1", "RCGAN")]
    assert rcgan["share"] == pytest.approx(0.2 * 95.17 / 96.69)
    assert rcgan["ratio_low"] == pytest.approx(95.165 / 96.695)
    assert rcgan["ratio_high"] == pytest.approx(95.175 / 96.685)
    baseline = pairs[("alad:V", "ALAD Baseline")]  # printed as 0.948 / 0.963: one decimal of a percent
    assert baseline["ratio_low"] == pytest.approx(94.75 / 96.35)
    assert all(p["ratio_low"] < p["share"] / 0.2 < p["ratio_high"] for p in pairs.values())
    with pytest.raises(ConfigError, match="^rcgan:1 print no precision / recall pair on mnist"):
        split_share.implied_shares(["rcgan:1"], "mnist", 0.2)


def test_candidate_splits_are_the_protocols_own(split_share):
    flags = (np.random.default_rng(0).random(1001) < 0.2).astype(np.int64)
    got = {c["split"]: c for c in split_share.candidate_splits(flags, [0.5, 0.8], 42, range(2), 0.15)}
    assert len(got) == 2 * (2 + 2)
    _, test = split_rows(len(flags), 0.5, 0, 42, "sample")
    assert got["train 0.5, split_seed=42, split_draw=sample"]["share"] == pytest.approx(flags[test].mean())
    _, test = split_rows(len(flags), 0.8, 1, None, "train_test_split")
    one = got["train 0.8, seed 1's own split"]
    assert one["share"] == pytest.approx(flags[test].mean())
    # precision / recall on that split: its anomalies over the rows the metric flags
    scores = np.random.default_rng(1).random(len(test))
    metrics = evaluate(flags[test], scores, 0.15)
    assert metrics["precision"] / metrics["recall"] == pytest.approx(one["ratio"])
    assert split_share.flagged_count(len(test), 0.15) == round(metrics["flagged"] * len(test))
    assert split_share.flagged_count(226, 0.15) == 34  # not 0.15 x 226 = 33.9: ALAD's Arrhythmia 17/34, 17/32


def test_the_report_on_tiny_kdd99_and_its_error_lines(split_share, tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["split_share.py", "--reference", "rcgan:1", "--seeds", "2",
                                      "--data-dir", str(tiny_data)])
    split_share.main()
    out = capsys.readouterr().out
    assert "flagged fraction 0.2" in out and "rcgan:1  RCGAN" in out and "share 19.686% [19.684, 19.688]" in out
    assert "train 0.8, seed 1's own split" in out
    for argv, says in ((["--dataset", "nosuch"], "error: no dataset config nosuch.yaml"),
                       (["--data-dir", str(tiny_data / "empty")], "error: kddcup.data_10_percent.gz not found")):
        monkeypatch.setattr(sys, "argv", ["split_share.py", *argv])
        with pytest.raises(SystemExit) as stop:  # bad input: one line, the CLI's exit status 2
            split_share.main()
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and line.startswith(says), line

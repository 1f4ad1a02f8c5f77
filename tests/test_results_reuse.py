"""What a run keeps and how it is reused: scores, per-epoch metrics, plots, the saved detector, rescoring
with `ganad-bench-score`, the scikit-learn-style API, `load_results`, the objective a hyperparameter sweeper
gets, the optional loggers."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from ganad_bench import create_detector
from ganad_bench.errors import ConfigError
from ganad_bench.run import prepare_data, run
from ganad_bench.runs import load_run
from tests import test_image_data

REPO = Path(__file__).resolve().parents[1]
image_files = test_image_data.image_data  # the tiny image files fixture, under this module's name


def folder_of(row: dict) -> Path:
    return Path(row["result_path"]).parent


@pytest.fixture
def dcae_run(make_cfg):
    return run(make_cfg("model=dcae", "trainer.epochs=2", "trainer.device=cpu", "protocol.val_fraction=0.2"))


def test_a_deep_run_keeps_scores_metrics_plots_and_its_detector(dcae_run):
    folder = folder_of(dcae_run)
    assert dcae_run["files"] == {"scores": "scores.npz", "metrics": "metrics.csv", "detector": "detector.pt",
                                 "evaluation_plot": "evaluation.png", "learning_curve_plot": "learning_curve.png"}
    with np.load(folder / "scores.npz") as saved:
        assert roc_auc_score(saved["labels"], saved["scores"]) == pytest.approx(dcae_run["metrics"]["auroc"])
        threshold = float(saved["threshold"])
    flagged = (np.load(folder / "scores.npz")["scores"] >= threshold).sum()
    assert flagged >= 1
    lines = (folder / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("stage,epoch,") and "g_loss" in lines[0] and len(lines) == 3
    for name in ("evaluation.png", "learning_curve.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (folder / name).stat().st_size < 200_000


def test_no_plots_when_turned_off(make_cfg):
    row = run(make_cfg("plots=false"))
    assert set(row["files"]) == {"scores"} and not list(folder_of(row).glob("*.png"))


def test_a_loaded_deep_run_rescores_its_test_split_exactly(dcae_run):
    loaded = load_run(folder_of(dcae_run))
    data = prepare_data(dcae_run["config"])
    raw = data.split.test_features(data.raw.features)
    saved = np.load(folder_of(dcae_run) / "scores.npz")
    np.testing.assert_array_equal(loaded.score(raw), saved["scores"])
    assert loaded.score(raw[:0]).shape == (0,)  # no rows: no scores (the scaler, then the detector)
    np.testing.assert_array_equal(loaded.flags(saved["scores"]), (saved["scores"] >= saved["threshold"]).astype(int))
    for bad, said in ((np.array([0.1, np.nan]), "1 of 2 scores are NaN or infinite"),
                      (np.array([np.inf, -np.inf, 0.0]), "2 of 3 scores are NaN or infinite"),
                      (np.array(["a", "b"]), "scores of type <U1")):
        with pytest.raises(ConfigError, match=re.escape(said)):  # a NaN would read as "normal"
            loaded.flags(bad)


def test_runs_that_differ_only_in_the_score_share_one_training(make_cfg, tmp_path):
    """ALAD Table VII's four scores: a run whose config differs from a finished run's only in a scoring-only
    parameter copies that run's checkpoints and only scores; its scores are those of a run trained for that
    score from scratch. A run that differs in anything else trains."""
    common = ("model=alad", "trainer.epochs=2", "trainer.device=cpu", "plots=false")
    first = run(make_cfg(*common, "model.params.score=features"))
    second = run(make_cfg(*common, "model.params.score=l1"))
    assert "trained_by" not in first and second["trained_by"] == folder_of(first).name
    assert second["resumed_from"]["epoch"] == 2 and second["timings"]["fit_s"] < first["timings"]["fit_s"]
    alone = run(make_cfg(*common, "model.params.score=l1", f"paths.output_dir={tmp_path / 'alone'}"))
    assert "trained_by" not in alone and alone["resumed_from"] is None
    shared, fresh = (np.load(folder_of(r) / "scores.npz")["scores"] for r in (second, alone))
    np.testing.assert_array_equal(shared, fresh)
    other = run(make_cfg(*common, "model.params.score=l2", "trainer.lr=1e-3"))
    assert "trained_by" not in other and other["resumed_from"] is None


def test_a_checkpoint_from_before_the_scoring_split_still_resumes():
    """Checkpoints written before fingerprints named the training parameters apart resume as before."""
    from ganad_bench.training.engine import same_training

    old = {"model": "alad", "params": "[('score', 'l1')]", "seed": 0}
    new = {**old, "training_params": "[]"}
    assert same_training(old, new) and same_training(new, {**new, "params": "[('score', 'l2')]"})
    assert not same_training(old, {**new, "params": "[('score', 'l2')]"})  # the old one names its score
    assert not same_training(new, {**new, "training_params": "[('width', 8)]"})


def test_a_classic_run_is_refitted_to_the_same_scores(make_cfg):
    row = run(make_cfg("model=iforest"))
    loaded = load_run(folder_of(row))
    data = prepare_data(row["config"])
    np.testing.assert_array_equal(loaded.score(data.split.test_features(data.raw.features)),
                                  np.load(folder_of(row) / "scores.npz")["scores"])


def test_ganad_bench_score_reproduces_the_stored_scores(dcae_run, tmp_path, capsys):
    from ganad_bench.cli import score_main

    data = prepare_data(dcae_run["config"])
    np.save(tmp_path / "test.npy", data.split.test_features(data.raw.features))
    np.savetxt(tmp_path / "test.csv", data.split.test_features(data.raw.features), delimiter=",", fmt="%.17g")
    saved = np.load(folder_of(dcae_run) / "scores.npz")["scores"]
    # the run named by its folder, or by its result.json (what a listing of the rows shows)
    for name, run_dir in (("test.npy", folder_of(dcae_run)), ("test.csv", folder_of(dcae_run) / "result.json")):
        score_main([str(run_dir), str(tmp_path / name), "--out", str(tmp_path / f"{name}.out.csv")])
        written = np.loadtxt(tmp_path / f"{name}.out.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(written[:, 0], saved)
    assert "wrote 1886 scores" in capsys.readouterr().err


def test_ganad_bench_score_errors_are_one_line(tmp_path, capsys, dcae_run):
    from ganad_bench.cli import score_main

    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, *dcae_run["feature_shape"])))
    (tmp_path / "words.csv").write_text("a,b\n1,x\n")
    (tmp_path / "short.csv").write_text("1,2,3,4,5,6\n1,2,3\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b,c\n")
    (tmp_path / "semicolons.csv").write_text("1;2;3\n")
    (tmp_path / "tabs.csv").write_text("a\tb\n1\t2\n")
    (tmp_path / "junk.npy").write_text("not an array")
    (tmp_path / "nothing.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "archive.npz", x=np.zeros((3, *dcae_run["feature_shape"])))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    missing = np.zeros((3, *dcae_run["feature_shape"]))
    missing[1, 4] = np.nan
    np.savetxt(tmp_path / "missing.csv", missing, delimiter=",")
    np.save(tmp_path / "none.npy", np.zeros((0, *dcae_run["feature_shape"])))
    np.save(tmp_path / "complex.npy", np.zeros((3, *dcae_run["feature_shape"]), dtype=complex))
    from ganad_bench.results.image_grid import write_png

    write_png(tmp_path / "mixed" / "a.png", np.zeros((28, 28, 1), dtype=np.uint8))
    write_png(tmp_path / "mixed" / "b.png", np.zeros((32, 32, 3), dtype=np.uint8))
    write_png(tmp_path / "broken" / "a.png", np.zeros((28, 28, 1), dtype=np.uint8))
    (tmp_path / "broken" / "b.png").write_bytes((tmp_path / "broken" / "a.png").read_bytes()[:40])  # cut short
    width = dcae_run["feature_shape"][0]
    np.save(tmp_path / "one.npy", np.zeros(width))
    huge = np.zeros((3, width))
    huge[:, 1] = 3e38  # float32's largest is 3.4e38: the run's min-max scaling (spread < 1) takes it past
    np.save(tmp_path / "huge.npy", huge)
    huge[:, 1] = 1e300
    np.save(tmp_path / "huger.npy", huge)
    run_dir = str(folder_of(dcae_run))
    cases = [([str(tmp_path), str(tmp_path / "bad.npy")], "holds no finished run"),
             ([run_dir, str(tmp_path / "bad.npy")], f"give one row of {dcae_run['feature_shape'][0]} raw features"),
             ([run_dir, str(tmp_path / "x.txt")], "no such file"),
             ([run_dir, str(tmp_path / "words.csv")], "holds values that are not numbers"),
             ([run_dir, str(tmp_path / "short.csv")], "line 2 has 3 values where line 1 has 6: give every row"),
             ([run_dir, str(tmp_path / "empty.csv")], "cannot read"),
             # NumPy's own message for these suggests unpickling the file: ours names what the file is
             ([run_dir, str(tmp_path / "junk.npy")], "junk.npy (not a NumPy .npy / .npz file of numbers; pickled"),
             ([run_dir, str(tmp_path / "objects.npy")], "(not a NumPy .npy / .npz file of numbers; pickled Python"),
             ([run_dir, str(tmp_path / "nothing.npy")], "nothing.npy (empty or cut short): give a .npy array"),
             ([run_dir, str(tmp_path / "archive.npy")], "archive.npy (a .npz archive of several arrays: save the"),
             ([run_dir, str(tmp_path / "none.npy")], "holds no rows to score"),
             ([run_dir, str(tmp_path / "header.csv")], "header.csv holds no rows to score"),  # not "not numbers"
             # one column of words ("no rows" for one line) would not say what to change
             ([run_dir, str(tmp_path / "semicolons.csv")], "semicolons.csv separates its values with semicolons: "
                                                           "give comma-separated values"),
             ([run_dir, str(tmp_path / "tabs.csv")], "separates its values with tabs: give comma-separated"),
             ([run_dir, "/dev/null"], "/dev/null is not a file: give a .npy array"),  # it exists: not "no such"
             ([run_dir, str(tmp_path / "complex.npy")], "of dtype complex128: give numbers"),
             ([run_dir, str(tmp_path / "missing.csv")], "inputs are not finite, the first nan at sample 2, feature 5"),
             ([run_dir, str(good), "--out", str(tmp_path / "bad.npy" / "s.csv")], "cannot write"),
             ([run_dir, str(good), "--out", str(tmp_path)], "Is a directory): choose a writable --out file"),
             # neither the inputs nor the run's own files are replaced by the scores (both were, silently)
             ([run_dir, str(good), "--out", str(good)], f"--out {good} is the inputs file: the scores would replace"),
             ([run_dir, str(good), "--out", str(Path(run_dir) / "result.json")], "lies in the run folder"),
             ([run_dir, str(tmp_path / "flat.npy")], "inputs of shape (4,) (each of shape ()), but this run"),
             ([run_dir, str(tmp_path / "one.npy")], f"inputs of shape ({width},): one input without the axis "
                                                    f"that counts the inputs; give an array of shape (n, {width}), "
                                                    f"e.g. x.reshape(1, {width})"),
             # finite, but inf in float32 once scaled: not "missing values", and no RuntimeWarning
             ([run_dir, str(tmp_path / "huge.npy")], "3 value(s) are beyond float32's range (3.4e38) once scaled as "
                                                     "the run scales them (minmax), the first 3e+38 at sample 1, "
                                                     "feature 2"),
             ([run_dir, str(tmp_path / "huger.npy")], "3 value(s) of the inputs are beyond float32's range (3.4e38), "
                                                      "in which the deep detectors compute, the first 1e+300 at "
                                                      "sample 1, feature 2"),
             ([run_dir, str(good), "--device", "tpu"], "unknown device --device tpu: choose one of auto"),
             ([run_dir, str(tmp_path / "mixed")], "b.png is 32x32 RGB but a.png is 28x28 grey: give images of one"),
             ([run_dir, str(tmp_path / "broken")], "b.png as a PNG image (")]
    np.save(tmp_path / "flat.npy", np.zeros(4))
    if not torch.cuda.is_available():  # the device is named as this command takes it, not as trainer.device
        cases.append(([run_dir, str(good), "--device", "cuda"],
                      "--device cuda but no CUDA device is visible: use --device auto or cpu"))
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            score_main(args)
        assert exit_.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and message in line and "allow_pickle" not in line, (args, line)
    assert not (tmp_path / "missing.csv.scores.csv").exists()  # nothing written for rejected inputs
    scores = folder_of(dcae_run) / "scores.npz"  # the run's own scores, cut short: one line, not a traceback
    saved = scores.read_bytes()
    try:
        for damaged, reason in ((saved[: len(saved) // 2], "a damaged .npz archive"), (b"", "empty or cut short")):
            scores.write_bytes(damaged)
            with pytest.raises(SystemExit) as exit_:
                score_main([run_dir, str(good)])
            assert exit_.value.code == 2
            (line,) = capsys.readouterr().err.strip().splitlines()
            assert f"scores.npz is missing or unreadable ({reason}): rerun the run with force=true" in line, line
    finally:
        scores.write_bytes(saved)


def test_ganad_bench_score_checks_its_output_before_scoring_and_writes_it_whole(dcae_run, tmp_path, capsys,
                                                                              monkeypatch):
    """A bad --out is found before the scoring (hours for AnoGAN's latent search), not after; a write that
    fails half-way leaves the earlier file as it was and no temporary file."""
    import pandas as pd

    from ganad_bench import runs
    from ganad_bench.cli import score_main

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, *dcae_run["feature_shape"])))
    loaded = load_run(folder_of(dcae_run))
    monkeypatch.setattr(runs, "load_run", lambda *args, **kwargs: loaded)
    monkeypatch.setattr(loaded, "score", lambda x: pytest.fail("scored before checking --out"))
    with pytest.raises(SystemExit) as exit_:
        score_main([str(folder_of(dcae_run)), str(good), "--out", str(tmp_path / "good.npy" / "s.csv")])
    assert exit_.value.code == 2 and "cannot write" in capsys.readouterr().err
    monkeypatch.undo()

    out = tmp_path / "nested" / "scores.csv"  # a missing folder is made
    score_main([str(folder_of(dcae_run)), str(good), "--out", str(out)])
    before = out.read_text()
    assert len(before.splitlines()) == 4

    def half_then_fail(self, handle, **kwargs):
        handle.write("score,flag\n0.1,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(SystemExit):
        score_main([str(folder_of(dcae_run)), str(good), "--out", str(out)])
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == before and sorted(p.name for p in out.parent.iterdir()) == ["scores.csv"]


@pytest.mark.parametrize("name", ["iforest", "dcae"])
def test_scikit_learn_style_api(name, tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 5)).astype(np.float32)
    test = np.vstack([rng.normal(size=(50, 5)), rng.normal(3.0, size=(10, 5))]).astype(np.float32)
    trainer = {"epochs": 2, "device": "cpu", "progress": False} if name == "dcae" else None
    det = create_detector(name, trainer=trainer)
    copy = clone(det)
    assert copy.get_params() == det.get_params() and copy is not det
    det.fit(train)
    assert len(det.decision_scores_) == 200
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90))
    np.testing.assert_array_equal(det.decision_function(test), det.score_samples(test))
    np.testing.assert_array_equal(det.predict(test), (det.score_samples(test) >= det.threshold_).astype(int))
    assert det.predict(train).mean() == pytest.approx(0.1, abs=0.02)
    key = "n_estimators" if name == "iforest" else "rep_dim"
    assert clone(det).set_params(**{key: 7}).get_params()[key] == 7
    with pytest.raises(ValueError, match="no parameter"):
        det.set_params(nope=1)
    # a bad value is refused by set_params, as by the constructor, not by a fit that fails later; the params stay
    with pytest.raises(ConfigError, match=f"model.params.{key} must be"):
        det.set_params(**{key: 0})
    assert det.get_params()[key] != 0
    # scikit-learn or torch would fail at fit (2**32: past NumPy's and scikit-learn's largest seed), or take True as 1
    for seed in ("abc", -1, 1.5, True, 2**32):
        with pytest.raises(ConfigError, match="seed must be an integer from 0 to 4294967295"):
            create_detector(name, seed=seed)
    assert create_detector(name, seed=np.int64(3)).seed == 3
    with pytest.raises(IsADirectoryError):  # not a temporary file beside the folder, renamed onto it
        det.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_saved_detectors_reload_without_pickle(tmp_path):
    from ganad_bench.models.kit.contract import Detector

    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(120, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)
    for name in ("kde", "ocsvm", "dcae"):
        trainer = {"epochs": 1, "device": "cpu", "progress": False} if name == "dcae" else None
        det = create_detector(name, trainer=trainer).fit(train)
        det.save(tmp_path / f"{name}.pt")
        again = Detector.load(tmp_path / f"{name}.pt")
        np.testing.assert_array_equal(again.score_samples(test), det.score_samples(test))
        assert again.threshold_ == det.threshold_


def damage_saved_detector(path: Path, how: str) -> None:
    import torch

    if how == "cut short":
        path.write_bytes(path.read_bytes()[:1000])
        return
    payload = torch.load(path, weights_only=True)
    if how == "not a detector":
        payload = [1, 2]
    elif how == "no state":
        del payload["state"]
    elif how == "a network of another shape":
        module = payload["state"]["module"]
        name = next(key for key, value in module.items() if getattr(value, "ndim", 0) == 2)
        module[name] = module[name][:, :1]
    torch.save(payload, path)


@pytest.mark.parametrize("how, message", [
    ("cut short", "is not a readable saved detector (PytorchStreamReader failed reading zip archive"),
    ("not a detector", "is not a saved ganad_bench detector (format 'list')"),
    ("no state", "is not a readable saved detector (no 'state' entry)"),
    ("a network of another shape", "is not a readable saved detector (Error(s) in loading state_dict"),
])
def test_a_damaged_saved_detector_is_a_one_line_error_naming_the_fix(dcae_run, tmp_path, capsys, how, message):
    """`Detector.load` and `ganad-bench-score` on a detector.pt that is cut short, edited or of another
    model's shape: one error naming the file (a traceback from torch before)."""
    import shutil

    from ganad_bench.cli import score_main
    from ganad_bench.errors import GanadError
    from ganad_bench.models.kit.contract import Detector

    folder = Path(shutil.copytree(folder_of(dcae_run), tmp_path / "run"))
    damage_saved_detector(folder / "detector.pt", how)
    with pytest.raises(GanadError, match=re.escape(message)):
        Detector.load(folder / "detector.pt")
    np.save(tmp_path / "x.npy", np.zeros((3, *dcae_run["feature_shape"])))
    with pytest.raises(SystemExit) as exit_:
        score_main([str(folder), str(tmp_path / "x.npy")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and line.startswith("error: ") and message in line
    assert not (tmp_path / "x.npy.scores.csv").exists()


def test_load_results_has_every_row_with_config_metrics_and_timings(make_cfg, monkeypatch, tmp_path):
    from ganad_bench.models import iforest
    from ganad_bench.results.store import load_results

    run(make_cfg())
    monkeypatch.setattr(iforest.IsolationForestDetector, "fit_model",
                        lambda self, x, x_val=None: (_ for _ in ()).throw(RuntimeError("boom")))
    run(make_cfg("seed=1"))
    frame = load_results(tmp_path / "outputs" / "results")
    assert sorted(frame["status"]) == ["failed", "ok"]
    assert {"metrics.auroc", "timings.fit_s", "config.trainer.lr", "config.model.params.n_estimators", "error",
            "run_dir", "code_version"} <= set(frame.columns)
    (tmp_path / "empty").mkdir()
    assert load_results(tmp_path / "empty").empty  # no runs yet
    # a misspelt folder, or a result.json, is an error, not an empty frame that reads as "no runs yet"
    with pytest.raises(ConfigError, match=r"^no such folder: \S+/outputs/result \(run ganad-bench first\)"):
        load_results([tmp_path / "outputs" / "results", tmp_path / "outputs" / "result"])
    with pytest.raises(ConfigError, match=r"^not a folder: \S+result.json \(give the folder of the rows"):
        load_results(frame["run_dir"][0] + "/result.json")


def test_the_objective_is_the_validation_loss_unless_test_selection_is_declared(make_cfg):
    row = run(make_cfg("model=dcae", "trainer.epochs=1", "trainer.device=cpu", "protocol.val_fraction=0.2"))
    assert row["optimize"] == "val_loss" and row["objective"] > 0 and not row["allow_test_selection"]
    assert run(make_cfg())["objective"] is None  # no validation rows
    with pytest.raises(ConfigError, match="allow_test_selection=true"):
        run(make_cfg("optimize=auroc"))
    chosen = run(make_cfg("optimize=auroc", "allow_test_selection=true", "seed=3"))
    assert chosen["objective"] == chosen["metrics"]["auroc"] and chosen["allow_test_selection"]


def test_tables_label_runs_selected_on_test_labels():
    from ganad_bench.results.tables import rows_frame

    rows = [{"status": "ok", "model": "iforest", "dataset": "thyroid", "protocol": "tabular", "seed": s,
             "metrics": {"f1": 0.5}, "config": {"allow_test_selection": True}} for s in (0, 1)]
    assert set(rows_frame(rows)["variant"]) == {"allow_test_selection=True"}


def test_loggers_need_their_package_and_log_every_epoch(make_cfg, monkeypatch):
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ConfigError, match=r"pip install 'ganad_bench\[tensorboard\]'"):
            run(make_cfg("logger=tensorboard"))
    calls = []
    fake = types.ModuleType("mlflow")
    fake.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
    for name in ("set_tracking_uri", "start_run", "set_tags", "log_params", "log_metrics", "end_run"):
        setattr(fake, name, lambda *a, _name=name, **k: calls.append((_name, a, k)))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    run(make_cfg("model=dcae", "trainer.epochs=3", "trainer.device=cpu", "logger=mlflow"))
    names = [c[0] for c in calls]
    assert names.count("log_metrics") == 4 and names[-1] == "end_run"  # 3 epochs, then the test metrics
    assert calls[-1][2]["status"] == "FINISHED"


def test_plot_command_draws_one_roc_figure_per_cell(make_cfg, tmp_path):
    from ganad_bench.cli import plot_main

    for seed in (0, 1):
        run(make_cfg(f"seed={seed}"))
    plot_main([str(tmp_path / "outputs" / "results"), "--out", str(tmp_path / "plots")])
    (figure,) = (tmp_path / "plots").glob("*.png")
    assert figure.name == "thyroid_tabular_iforest_all_roc.png"


def test_plot_command_draws_runs_of_other_settings_apart_and_names_runs_it_leaves_out(make_cfg, tmp_path, capsys):
    """Runs that differ in a setting are two cells of a table (its `variant`), so two figures, never one
    figure with two curves labelled "seed 0"; a run without readable scores is named, not silently dropped."""
    from ganad_bench.cli import plot_main

    for trees in (50, 100):
        for seed in (0, 1):
            run(make_cfg(f"seed={seed}", f"model.params.n_estimators={trees}"))
    results, plots = tmp_path / "outputs" / "results", tmp_path / "plots"
    capsys.readouterr()
    plot_main([str(results), "--out", str(plots)])
    assert sorted(p.name for p in plots.glob("*.png")) == [
        "thyroid_tabular_iforest_all_model.params.n_estimators=100_roc.png",
        "thyroid_tabular_iforest_all_model.params.n_estimators=50_roc.png"]
    scores = sorted(results.rglob("scores.npz"))
    scores[0].unlink()
    scores[1].write_bytes(b"not an npz")
    capsys.readouterr()
    plot_main([str(results), "--out", str(plots)])
    err = capsys.readouterr().err
    assert "run(s) of this figure have no scores.npz and are left out" in err
    assert f"left out {scores[1]}: unreadable (not a NumPy .npy / .npz file of numbers" in err
    assert "Traceback" not in err and "allow_pickle" not in err  # NumPy's own message suggests unpickling it
    scores[1].write_bytes(scores[3].read_bytes()[:100])  # cut short: zipfile's BadZipFile, not a traceback
    plot_main([str(results), "--out", str(plots)])
    err = capsys.readouterr().err
    assert f"left out {scores[1]}: unreadable (a damaged .npz archive)" in err and "Traceback" not in err
    for path in results.rglob("scores.npz"):  # one setting's runs keep no scores: no figure for it, and said so
        if json.loads((path.parent / "result.json").read_text())["config"]["model"]["params"]["n_estimators"] == 50:
            path.unlink()
    capsys.readouterr()
    plot_main([str(results), "--out", str(plots)])
    err = capsys.readouterr().err
    assert "no figure for the cells of" in err and "without scores.npz" in err and "Traceback" not in err


def ganad(tmp_path, *args):
    env = {**os.environ, "GANAD_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", "from ganad_bench.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def test_an_optuna_search_takes_its_objective_from_validation_data(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    done = ganad(tmp_path, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=0",
                 "trainer.lr=tag(log,interval(1e-4,1e-2))", "model=dcae", "trainer.epochs=1",
                 "trainer.device=cpu", "protocol.val_fraction=0.2", f"paths.output_dir={tmp_path / 'out'}")
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = (tmp_path / "out" / "multirun").glob("*/optimization_results.yaml")
    best = float(result.read_text().split("best_value:")[1].split()[0])
    rows = [json.loads(p.read_text()) for p in (tmp_path / "out" / "results").rglob("result.json")]
    assert len(rows) == 3 and best == pytest.approx(min(r["objective"] for r in rows))


def test_shell_completion_is_hydras(tmp_path):
    done = ganad(tmp_path, "-sc", "install=bash")
    assert done.returncode == 0 and "complete" in done.stdout


def test_an_image_run_keeps_reconstructions_and_scores_a_folder_of_pngs(image_files, tmp_path, capsys):
    """Tiny MNIST files (tests/test_image_data.py): DCAE's reconstructions.png, then the run rescores its test
    images written as PNG files to the stored scores."""
    from ganad_bench.cli import score_main
    from ganad_bench.results.image_grid import write_png
    from tests.test_image_data import compose

    row = run(compose(tmp_path, image_files[0], "model=dcae", "dataset=mnist", "dataset.normal_class=1",
                      "trainer.epochs=1", "trainer.device=cpu", "trainer.batch_size=8"))
    assert row["status"] == "ok" and row["files"]["reconstructions_plot"] == "reconstructions.png"
    data = prepare_data(row["config"])
    images = data.split.test_features(data.raw.features)  # uint8 (n, 1, 28, 28)
    folder = tmp_path / "pngs"
    for i, image in enumerate(images):
        write_png(folder / f"{i:04d}.png", np.moveaxis(image, 0, -1))
    score_main([str(folder_of(row)), str(folder), "--out", str(tmp_path / "s.csv")])
    written = np.genfromtxt(tmp_path / "s.csv", delimiter=",", skip_header=1, usecols=1)
    np.testing.assert_array_equal(written, np.load(folder_of(row) / "scores.npz")["scores"])


def test_ganad_bench_score_goes_on_from_an_interrupted_scoring(make_cfg, tmp_path, monkeypatch, capsys):
    """AnoGAN scores its inputs 256 at a time, keeping the scores so far beside the output; a kill costs only
    the chunk under way and the same command goes on, to the scores of one sitting."""
    from ganad_bench.cli import score_main
    from ganad_bench.run import PartialScores

    anogan = run(make_cfg("model=anogan", "trainer.epochs=1", "trainer.device=cpu", "model.params.search_steps=3",
                          "trainer.checkpoint_seconds=0", "plots=false"))
    data = prepare_data(anogan["config"])
    np.save(tmp_path / "test.npy", data.split.test_features(data.raw.features))
    command = [str(folder_of(anogan)), str(tmp_path / "test.npy"), "--out", str(tmp_path / "scores.csv")]
    original, saves = PartialScores.save, []

    def save(self, parts):
        original(self, parts)
        saves.append(len(parts))
        if len(saves) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(PartialScores, "save", save)
        with pytest.raises(KeyboardInterrupt):
            score_main(command)
    assert (tmp_path / "scores.csv.partial.npz").is_file() and not (tmp_path / "scores.csv").exists()
    score_main(command)
    assert "went on from the 512 scores kept by an interrupted scoring" in capsys.readouterr().err
    written = np.loadtxt(tmp_path / "scores.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written[:, 0], np.load(folder_of(anogan) / "scores.npz")["scores"])
    assert not (tmp_path / "scores.csv.partial.npz").exists()

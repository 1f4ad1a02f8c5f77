"""`run(cfg)`: the result row, skipping finished runs, recording failures, no file on user errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from ganad_bench.errors import ChecksumMismatch, ConfigError, DataFileMissing
from ganad_bench.run import run

ROW_KEYS = {"status", "model", "dataset", "protocol", "normal_class", "seed", "metrics", "sizes",
            "anomaly_ratio_test", "timings", "device", "versions", "git_revision", "config", "config_hash",
            "started_at", "finished_at"}


def result_files(tmp_path):
    return list((tmp_path / "outputs").rglob("result.json"))


def test_default_run_writes_a_complete_row(make_cfg, tmp_path):
    row = run(make_cfg())
    assert row["status"] == "ok" and ROW_KEYS <= set(row)
    assert (row["model"], row["dataset"], row["protocol"]) == ("iforest", "thyroid", "tabular")
    assert set(row["metrics"]) == {"auroc", "auprc", "precision", "recall", "f1", "flagged"}
    sizes = row["sizes"]
    assert sizes["n_test"] == 3772 - round(0.5 * 3772)
    assert sizes["n_test_anomalies"] == round(row["anomaly_ratio_test"] * sizes["n_test"])
    stored = json.loads(open(row["result_path"]).read())
    assert stored["metrics"] == row["metrics"] and stored["config"]["model"]["name"] == "iforest"


def test_finished_run_is_skipped_and_force_reruns(make_cfg):
    first = run(make_cfg())
    again = run(make_cfg())
    assert again.get("skipped") and again["finished_at"] == first["finished_at"]
    forced = run(make_cfg("force=true"))
    assert not forced.get("skipped") and forced["metrics"] == first["metrics"]


def test_paths_do_not_change_the_run_identity(make_cfg, tmp_path):
    from ganad_bench.results.store import config_hash

    a = run(make_cfg())
    cfg = make_cfg("paths.download=true")
    from ganad_bench.config import to_container

    assert config_hash(to_container(cfg), trains_networks=False) == a["config_hash"]  # iforest: no trainer


def test_seed_and_model_params_change_the_identity(make_cfg):
    a, b = run(make_cfg()), run(make_cfg("seed=1"))
    c = run(make_cfg("model.params.n_estimators=50"))
    assert len({a["result_path"], b["result_path"], c["result_path"]}) == 3


def test_an_integer_written_for_a_protocol_fraction_is_the_same_run(make_cfg):
    """`protocol.val_fraction=0` on the command line and the YAML's 0.0 are one setting: one folder, and the
    second run is skipped as finished."""
    first = run(make_cfg())
    again = run(make_cfg("protocol.val_fraction=0"))
    assert again.get("skipped") and again["result_path"] == first["result_path"]
    assert json.loads(open(first["result_path"]).read())["config"]["protocol"]["val_fraction"] == 0.0


def test_a_whole_number_written_as_a_float_for_an_integer_setting_is_the_same_run(make_cfg):
    """Hydra reads `model.params.n_estimators=1e2` as 100.0: the Isolation Forest's 100 (one folder, the second
    run skipped), not a refused float; a fraction stays an error. The trainer's integers likewise
    (`trainer.epochs=1e3`)."""
    from ganad_bench.config import check_run_config, to_container

    first = run(make_cfg())
    again = run(make_cfg("model.params.n_estimators=1e2"))
    assert again.get("skipped") and again["result_path"] == first["result_path"]
    with pytest.raises(ConfigError, match="model.params.n_estimators must be an integer, got 1.5"):
        run(make_cfg("model.params.n_estimators=1.5"))
    deep = check_run_config(to_container(make_cfg("model=dcae", "trainer.epochs=1e3", "trainer.lr=1e0")))
    assert (deep["trainer"]["epochs"], deep["trainer"]["lr"]) == (1000, 1.0)
    assert type(deep["trainer"]["epochs"]) is int and type(deep["trainer"]["lr"]) is float


def test_runtime_failure_is_recorded_not_raised(make_cfg, monkeypatch):
    """A fault is recorded as one line (torch appends a C++ backtrace to its messages; the log keeps it)."""
    from ganad_bench.models.iforest import IsolationForestDetector

    def explode(self, x, x_val=None):
        raise RuntimeError("boom\nException raised from THPUtils_unpackLong (most recent call first):\nframe #0: ...")

    monkeypatch.setattr(IsolationForestDetector, "fit", explode)
    row = run(make_cfg())
    assert row["status"] == "failed" and row["error"] == "RuntimeError: boom"
    assert json.loads(open(row["result_path"]).read())["status"] == "failed"
    monkeypatch.undo()
    assert run(make_cfg())["status"] == "ok"  # a failed run is retried, not skipped


def test_first_line_of_an_error_or_a_text():
    from ganad_bench.errors import first_line

    assert first_line(RuntimeError("\nboom\nframe #0: ...")) == "boom" and first_line(MemoryError()) == "MemoryError"
    assert first_line("boom\nframe #0") == "boom" and first_line("  \n") == ""
    assert first_line("", empty="no error recorded") == "no error recorded"


def test_nan_scores_end_the_run_as_diverged(make_cfg, monkeypatch):
    import numpy as np

    from ganad_bench.models.iforest import IsolationForestDetector

    monkeypatch.setattr(IsolationForestDetector, "score_samples", lambda self, x: np.full(len(x), np.nan))
    row = run(make_cfg())
    assert row["status"] == "diverged" and "NaN" in row["error"]


def test_scores_tied_at_the_threshold_are_recorded_and_logged(make_cfg, monkeypatch, caplog):
    """Identical rows score identically; when a tied block straddles the threshold the whole block is flagged:
    the row's `flagged` says how much of the test split, and the run warns in one line."""
    import logging

    import numpy as np

    from ganad_bench.models.iforest import IsolationForestDetector

    monkeypatch.setattr(IsolationForestDetector, "score_samples", lambda self, x: np.round(x[:, 0], 0))
    with caplog.at_level(logging.WARNING, logger="ganad_bench"):
        row = run(make_cfg("dataset.scaler=minmax"))
    assert row["status"] == "ok" and row["metrics"]["flagged"] > 0.5  # min-max scaled, rounded: 0 or 1
    assert any("of the test rows flagged, not the protocol's 2.5%: scores tie" in r.getMessage()
               for r in caplog.records)


def test_a_missing_device_stops_a_deep_run_and_not_a_classic_one(make_cfg, tmp_path):
    """`trainer.device` is the deep models' setting: a classic run, whose folder and row do not depend on it, runs
    wherever it names a device this machine lacks; a deep run stops with the one line, before anything is
    written. A device name that does not exist anywhere is an error for both (tests/test_faults.py)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert run(make_cfg("trainer.device=cuda"))["status"] == "ok"
    with pytest.raises(ConfigError, match="trainer.device=cuda but no CUDA device is visible"):
        run(make_cfg("model=dcae", "trainer.device=cuda", "trainer.epochs=1"))
    assert [p.parent.parent.parent.name for p in result_files(tmp_path)] == ["iforest"]


@pytest.mark.parametrize("overrides,error", [
    (("protocol.train_fraction=1.5",), ConfigError),
    (("protocol.contamination=0",), ConfigError),
    (("dataset.source=zzz",), ConfigError),
    (("dataset.scaler=zscore",), ConfigError),
    (("trainer.device=tpu",), ConfigError),
    (("model.params.bogus=1", ), ConfigError),
])
def test_user_errors_raise_and_leave_no_result(make_cfg, tmp_path, overrides, error):
    cfg = make_cfg(*overrides) if "bogus" not in overrides[0] else make_cfg("+" + overrides[0])
    with pytest.raises(error):
        run(cfg)
    assert result_files(tmp_path) == []


def test_missing_and_corrupted_files_raise_and_leave_no_result(make_cfg, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileMissing, match="musk.mat not found"):
        run(make_cfg("dataset=musk", data_dir=empty))
    (empty / "odds").mkdir()
    (empty / "odds" / "musk.mat").write_bytes(b"\x00" * 100)
    with pytest.raises(ChecksumMismatch, match="musk.mat"):
        run(make_cfg("dataset=musk", data_dir=empty))
    assert result_files(tmp_path) == []


@pytest.mark.parametrize("model", ["iforest", "ocsvm", "kde"])
@pytest.mark.parametrize("dataset", ["kdd99", "musk", "arrhythmia"])
def test_every_classic_model_on_every_tabular_dataset(make_cfg, tiny_data, model, dataset):
    overrides = [f"model={model}", f"dataset={dataset}"]
    row = run(make_cfg(*overrides, data_dir=tiny_data))
    assert row["status"] == "ok", row.get("error")
    assert row["metrics"]["auroc"] > 0.8


def test_uci_arrhythmia_source(make_cfg, tiny_data):
    row = run(make_cfg("dataset=arrhythmia", "dataset.source=uci", data_dir=tiny_data))
    assert row["status"] == "ok" and row["n_features"] == 274


def test_tabular_baselines_experiment_composes_the_sweep():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        cfg = compose("config", overrides=["experiment=tabular_baselines"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert (params.model, params.dataset, params.seed) == (
        "iforest,ocsvm,kde", "kdd99,arrhythmia,thyroid,musk", "range(10)")


def test_the_default_experiment_is_rcgan_on_the_embedded_thyroid(make_cfg):
    row = run(make_cfg("trainer.epochs=2", model=None))
    assert (row["model"], row["dataset"], row["protocol"], row["status"]) == ("rcgan", "thyroid", "tabular", "ok")
    assert row["sizes"]["n_test"] == 3772 - round(0.5 * 3772)  # RCGAN's 50/50 Thyroid split


def test_a_model_parameter_added_later_keeps_the_earlier_runs_identity_and_cell():
    """`init` came to DCAE and Deep SVDD after runs were made: at its default the run keeps its folder and its
    table cell (rows without the key read as the default); set off it, it is a new run and a variant."""
    from ganad_bench.results.store import config_hash
    from ganad_bench.results.tables import rows_frame

    before = {"seed": 0, "model": {"name": "dcae", "params": {"rep_dim": None}}, "dataset": {"name": "mnist"},
              "protocol": {"name": "one_class"}, "trainer": {"epochs": 1}}
    default = {**before, "model": {"name": "dcae", "params": {"rep_dim": None, "init": "pytorch"}}}
    theano = {**before, "model": {"name": "dcae", "params": {"rep_dim": None, "init": "theano"}}}
    assert config_hash(default) == config_hash(before) != config_hash(theano)

    def row(config, seed):
        return {"status": "ok", "model": "dcae", "dataset": "mnist", "protocol": "one_class", "normal_class": 0,
                "seed": seed, "metrics": {"auroc": 0.9}, "config": {**config, "seed": seed}}

    frame = rows_frame([row(before, 0), row(default, 1), row(theano, 2)])
    assert list(frame["variant"]) == ["model.params.init=pytorch", "model.params.init=pytorch",
                                      "model.params.init=theano"]


def test_trainer_keys_added_later_keep_the_earlier_runs_folders():
    """`trainer.tf32` came after the campaign's runs (all on CPUs, where it changes nothing): at its default a
    run keeps its folder, so finished runs are skipped and interrupted ones resume; set, it is a new run."""
    from ganad_bench.results.store import config_hash

    before = {"seed": 0, "model": {"name": "alad"}, "dataset": {"name": "kdd99"}, "protocol": {"name": "tabular"},
              "trainer": {"epochs": 1, "bf16": False}}
    now = {**before, "trainer": {**before["trainer"], "tf32": False, "generator_batch": "same"}}
    assert config_hash(now) == config_hash(before)
    assert config_hash({**now, "trainer": {**now["trainer"], "tf32": True}}) != config_hash(before)


SLOW_SCORING = ("model=anogan", "trainer.epochs=1", "trainer.device=cpu", "trainer.checkpoint_seconds=0",
                "model.params.search_steps=3", "plots=false", "trainer.progress=false")


def scores_of(row):
    with np.load(Path(row["result_path"]).parent / "scores.npz") as saved:
        return saved["scores"]


def interrupt_scoring_after(monkeypatch, chunks: int) -> None:
    """A kill (Ctrl-C) right after the `chunks`-th chunk of test scores is saved."""
    from ganad_bench.run import PartialScores

    original, saves = PartialScores.save, []

    def save(self, parts):
        original(self, parts)
        saves.append(len(parts))
        if len(saves) == chunks:
            raise KeyboardInterrupt

    monkeypatch.setattr(PartialScores, "save", save)


def test_an_interrupted_scoring_goes_on_from_its_last_saved_chunk(make_cfg, tmp_path, monkeypatch, caplog):
    """AnoGAN's latent search takes hours on a CPU: a run killed while it scores its test rows keeps the chunks
    it scored (256 rows each); started again, it scores only the rest, and its scores are an uninterrupted
    run's."""
    whole = run(make_cfg(*SLOW_SCORING, f"paths.output_dir={tmp_path / 'whole'}"))
    with monkeypatch.context() as patch:
        interrupt_scoring_after(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            run(make_cfg(*SLOW_SCORING))
    assert not result_files(tmp_path) and list((tmp_path / "outputs").rglob("test_scores.partial.npz"))
    with caplog.at_level("INFO", logger="ganad_bench"):
        resumed = run(make_cfg(*SLOW_SCORING))
    n_test = resumed["sizes"]["n_test"]
    assert f"resuming the scoring at row 768 of {n_test}" in caplog.text
    assert resumed["timings"]["score_resumed_at_row"] == 768 and "score_resumed_at_row" not in whole["timings"]
    np.testing.assert_array_equal(scores_of(resumed), scores_of(whole))
    assert resumed["metrics"] == whole["metrics"]
    assert not list((tmp_path / "outputs").rglob("test_scores.partial.npz"))  # gone once the scoring is whole


@pytest.mark.parametrize("damage", ["unreadable", "other weights"])
def test_partial_scores_of_other_weights_or_damaged_are_not_used(make_cfg, tmp_path, monkeypatch, caplog, damage):
    whole = run(make_cfg(*SLOW_SCORING, f"paths.output_dir={tmp_path / 'whole'}"))
    with monkeypatch.context() as patch:
        interrupt_scoring_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run(make_cfg(*SLOW_SCORING))
    (partial,) = (tmp_path / "outputs").rglob("test_scores.partial.npz")
    if damage == "unreadable":
        partial.write_bytes(b"not an archive")
    else:  # the scores of another network: wrong numbers under another key
        with np.load(partial) as saved:
            np.savez(partial, scores=saved["scores"] + 1.0, key=np.array("another run's key"))
    with caplog.at_level("INFO", logger="ganad_bench"):
        resumed = run(make_cfg(*SLOW_SCORING))
    said = "unreadable" if damage == "unreadable" else "are of other rows or weights"
    assert f"test_scores.partial.npz {said}" in caplog.text
    assert "resuming the scoring" not in caplog.text and "score_resumed_at_row" not in resumed["timings"]
    np.testing.assert_array_equal(scores_of(resumed), scores_of(whole))


def test_scores_that_cannot_be_kept_do_not_stop_the_scoring(make_cfg, monkeypatch, caplog):
    from ganad_bench import run as run_module

    def full_disk(path, write, binary=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_module, "write_atomic", full_disk)
    with caplog.at_level("WARNING", logger="ganad_bench"):
        row = run(make_cfg(*SLOW_SCORING))
    assert row["status"] == "ok" and len(scores_of(row)) == row["sizes"]["n_test"]
    (warning,) = [r.getMessage() for r in caplog.records if "could not keep" in r.getMessage()]
    assert warning.endswith("([Errno 28] No space left on device): scoring on without")

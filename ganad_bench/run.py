"""`run(cfg) -> result row`: the only orchestration code, as three stages. Importable and testable
without Hydra's entry point: compose a config, call `run`, read the row.

First the config is checked and made canonical (`config.check_run_config`: every bad value raises a
one-line `GanadError` before anything is written) and the run's folder named from its identity. A finished
row is skipped (unless `force`, which also discards old checkpoints); otherwise the run takes the folder's
lock (`results.store.RunLock`: a second process on the same folder skips the run, status "busy"), removes
temporary files a killed process left, and goes through the stages:

1. `prepare_data(config)` — locate and verify the data, load, split by the protocol, scale with statistics
   of the training rows only;
2. `fit_and_score(detector, data, ...)` — fit on the normal training rows, score the test split in chunks;
3. `record_result(...)` — metrics and every fact of the run in one atomic `result.json`.

A finished row for the same config is skipped (unless `force`). A failure after the data is ready (a crash
or a NaN in training) is recorded in the row with its status and error, so a sweep goes on.
Scripts (`scripts/gan_measure.py`) build on the same stages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from ganad_bench.atomic import UnreadableArrays, read_npz, write_atomic
from ganad_bench.config import check_run_config, seed_host_generators, to_container
from ganad_bench.console import progress, step
from ganad_bench.data.dataset import RawDataset
from ganad_bench.data.files import DataSettings
from ganad_bench.data.preprocessing import make_scaler
from ganad_bench.data.protocols import Split, make_split
from ganad_bench.data.registry import load_raw
from ganad_bench.errors import ConfigError, GanadError, TrainingDiverged, fault_text
from ganad_bench.models.kit.catalog import is_deep
from ganad_bench.provenance import code_version, versions
from ganad_bench.results.loggers import epoch_loggers
from ganad_bench.results.store import (
    LOCK_FILE,
    RESULT_FILE,
    RunLock,
    config_hash,
    finished,
    remove_stale_temp_files,
    run_dir,
    write_json_atomic,
)
from ganad_bench.runs import save_run_files

if TYPE_CHECKING:  # the detector contract imports scikit-learn: a run skipped or refused never needs it
    from ganad_bench.models.kit.contract import Detector

log = logging.getLogger("ganad_bench")
CHECKPOINT_DIR = "checkpoints"


def run(cfg: DictConfig, job_dir: str | None = None) -> dict:
    config = check_run_config(to_container(cfg))
    deep = is_deep(config["model"]["name"])
    folder = run_dir(Path(config["paths"]["results_dir"]), config, deep)
    existing = None if config.get("force") else finished(folder)
    if existing is not None:
        return {**existing, "skipped": True, "result_path": str(folder / RESULT_FILE)}
    created = not folder.exists()
    try:
        with RunLock(writable_folder(folder)) as lock:
            if not lock.acquired:  # another process (a second sweep on this folder) is training it
                return {"status": "busy", "holder": lock.holder, "result_path": str(folder / RESULT_FILE),
                        "seed": config["seed"], "model": config["model"]["name"],
                        "dataset": config["dataset"]["name"], "protocol": config["protocol"]["name"],
                        "normal_class": config["dataset"].get("normal_class")}
            existing = None if config.get("force") else finished(folder)  # it may have finished meanwhile
            if existing is not None:
                return {**existing, "skipped": True, "result_path": str(folder / RESULT_FILE)}
            remove_stale_temp_files(folder)
            if config.get("force"):
                discard_checkpoints(folder)
            return train_and_record(config, folder, deep, job_dir)
    except GanadError:  # a bad setting or missing data found before anything was written: no empty run folder
        if created:
            remove_if_bare(folder, Path(config["paths"]["results_dir"]))
        raise


def train_and_record(config: dict, folder: Path, deep: bool, job_dir: str | None) -> dict:
    """The three stages of one run, under its lock."""
    # imported here, not with the module: a run found finished, or refused by its checks, loads no torch nor
    # scikit-learn (seconds of CPU)
    from ganad_bench.metrics import auroc_per_anomaly_class, evaluate, tie_warning
    from ganad_bench.models.kit.registry import build_detector, detector_class

    detector_class(config["model"]["name"])  # its method file and libraries load before the run's clock starts
    started = time.perf_counter(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    # deep detectors checkpoint every epoch into the run's own folder, so rerunning an interrupted
    # config resumes its training where it stopped; the detector is built first so that a bad model
    # parameter fails before any data is read
    loggers = epoch_loggers(config, folder) if deep else []
    twin = adopt_training(config, folder) if deep else None
    detector = build_detector(config["model"]["name"], int(config["seed"]), config["model"].get("params"),
                              config["trainer"], checkpoint_dir=str(folder / CHECKPOINT_DIR), callbacks=loggers)
    data = prepare_data(config)
    row = describe_run(config, data)
    if twin is not None:
        row["trained_by"] = twin.name
    if deep and config["trainer"].get("curve_every"):  # reported along training, never used by it
        detector.watch(data.x_test, data.split.test_labels, data.split.contamination)
    try:
        seed_run(int(config["seed"]), deep)
        seconds = float(config["trainer"]["checkpoint_seconds"])
        keep = deep and config["trainer"]["checkpoint_every_epoch"]  # where training keeps no checkpoint, no scores
        partial = PartialScores(folder / CHECKPOINT_DIR / PARTIAL_SCORES_FILE, seconds) if keep else None
        scores, timings = fit_and_score(detector, data, int(config["trainer"]["score_batch_size"]), partial)
        metrics = evaluate(data.split.test_labels, scores, data.split.contamination)
        if (classes := data.split.test_classes(data.raw)) is not None:
            metrics.update(auroc_per_anomaly_class(data.split.test_labels, scores, classes))
        if (ties := tie_warning(metrics, data.split.contamination)) is not None:
            log.warning(ties)
        row.update(metrics=metrics,
                   artifacts=detector.write_artifacts(folder), fit_rows=detector.fit_rows or len(data.x_train),
                   timings=timings, status="ok")
        curve = detector.learning_curve(adopted=twin is not None) if deep else []
        if curve:
            row["learning_curve"] = curve
        row.update(objective=objective(config, detector, data, row["metrics"]),
                   files=save_run_files(folder, config, detector, data, scores, curve))
    except GanadError:
        raise
    except TrainingDiverged as err:
        row.update(status="diverged", error=str(err))
    except Exception as err:  # recorded, not swallowed: the row says failed and the CLI exits non-zero
        row.update(status="failed", error=fault_text(err))
        log.info("run failed (the row records it):\n%s", traceback.format_exc())  # the log file, not the terminal
    finally:
        for logger in loggers:
            logger.finish(row)
    record_result(folder, row, config, detector, started, job_dir, deep)
    return {**row, "result_path": str(folder / RESULT_FILE)}


def training_twin(config: dict, folder: Path) -> Path | None:
    """A finished run of the same seed whose training is this run's (its config differs only in the model's
    scoring-only parameters, `DeepDetector.scoring_params`: ALAD's and RCGAN's `score`) and whose checkpoints
    are kept; None when this run has checkpoints of its own or there is no such run."""
    from ganad_bench.models.kit.registry import detector_class
    from ganad_bench.results.store import identity

    scoring = getattr(detector_class(config["model"]["name"]), "scoring_params", ())
    if not scoring or (folder / CHECKPOINT_DIR).exists():
        return None

    def training(cfg: dict) -> dict:
        same = identity(cfg)
        params = {k: v for k, v in (same["model"].get("params") or {}).items() if k not in scoring}
        return {**same, "model": {**same["model"], "params": params}}

    mine = training(config)
    for other in sorted(folder.parent.glob(f"seed{config['seed']}-*")):
        row = finished(other) if other != folder and (other / CHECKPOINT_DIR).is_dir() else None
        if row is not None and isinstance(row.get("config"), dict) and training(row["config"]) == mine:
            return other
    return None


def adopt_training(config: dict, folder: Path) -> Path | None:
    """Copy a training twin's checkpoints into this run's folder (whole, or not at all), so that the run
    resumes at its twin's last epoch and only scores (ALAD Table VII's four scores: one training per seed).
    Returns the twin, or None."""
    twin = training_twin(config, folder)
    if twin is None:
        return None
    partial = folder / f".{CHECKPOINT_DIR}.{os.getpid()}.part"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(twin / CHECKPOINT_DIR, partial)
    os.replace(partial, folder / CHECKPOINT_DIR)
    log.info("the training of %s is this run's (they differ only in how they score): scoring its networks", twin)
    return twin


def writable_folder(folder: Path) -> Path:
    """`folder`, created; a one-line ConfigError when the output location cannot hold it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the run folder {folder} ({err.strerror or err}): set paths.output_dir "
                          f"(or paths.results_dir) to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"the run folder {folder} is not writable: set paths.output_dir (or paths.results_dir) to "
                          f"a writable folder")
    return folder


def remove_if_bare(folder: Path, results_dir: Path) -> None:
    """Remove a run folder that holds nothing but its lock file, and the folders above it (up to the results
    folder) that it leaves empty: a run that failed before writing anything leaves no trace a table or a later
    run would trip on. A folder with anything else in it (a checkpoint, a log) is kept."""
    if not folder.is_dir() or any(path.is_file() and path.name != LOCK_FILE for path in folder.rglob("*")):
        return  # never made (the output location cannot hold it), or it holds something
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    while parent != results_dir and results_dir in parent.parents:
        try:
            parent.rmdir()  # only an empty folder: another run's folder beside it keeps it
        except OSError:
            break
        parent = parent.parent


def discard_checkpoints(folder: Path) -> None:
    """`force=true` trains from scratch: the old checkpoints are removed first."""
    checkpoints = folder / CHECKPOINT_DIR
    if checkpoints.exists():
        shutil.rmtree(checkpoints)
        log.info("force=true: removed the checkpoints in %s, training from scratch", checkpoints)


@dataclasses.dataclass
class PreparedData:
    """One run's data: the raw dataset(s), the protocol's split, the fitted scaler and the scaled arrays."""

    raw: RawDataset
    split: Split
    x_train: np.ndarray
    x_val: np.ndarray | None
    x_test: np.ndarray
    load_s: float
    scaler: object = None
    anomaly_raw: RawDataset | None = None


def prepare_data(config: dict) -> PreparedData:
    """Stage 1: load the dataset (and, for `cross_dataset`, the one the anomalies come from), split it by the
    protocol with the run seed, and scale every part with a scaler fitted on the training rows only."""
    tick = time.perf_counter()
    settings = DataSettings.from_config(config["paths"])
    scaler = make_scaler(config["dataset"])
    with step(f"loading {config['dataset']['name']}"):
        raw = load_raw(config["dataset"]["name"], config["dataset"].get("source"), settings)
    anomaly_raw = None
    if config["protocol"].get("anomaly_dataset"):  # cross_dataset: the anomalies come from dataset B
        with step(f"loading {config['protocol']['anomaly_dataset']} (anomalies)"):
            anomaly_raw = load_raw(config["protocol"]["anomaly_dataset"], config["protocol"].get("anomaly_source"),
                                   settings)
    split = make_split(config["protocol"], raw, int(config["seed"]), normal_class=config["dataset"].get("normal_class"),
                       anomaly_raw=anomaly_raw)
    scaler.fit(raw.features[split.train])  # training rows only
    x_val = scaler.transform(raw.features[split.val]) if len(split.val) else None
    return PreparedData(raw=raw, split=split, x_train=scaler.transform(raw.features[split.train]), x_val=x_val,
                        x_test=scaler.transform(split.test_features(raw.features)), anomaly_raw=anomaly_raw,
                        scaler=scaler, load_s=time.perf_counter() - tick)


def seed_run(seed: int, deep: bool) -> None:
    """The global generators from the run seed; torch's only for a deep detector, so a classic run loads no
    torch (a deep detector seeds them again as it builds its networks)."""
    if deep:
        from ganad_bench.training.device import seed_everything

        seed_everything(seed)
    else:
        seed_host_generators(seed)


def fit_and_score(detector: Detector, data: PreparedData, score_batch_size: int,
                  partial: PartialScores | None = None) -> tuple[np.ndarray, dict]:
    """Stage 2: fit on the normal training rows (validation rows for early stopping), score the test split in
    chunks (saved as they come to `partial`, and resumed from it); NaN or inf scores raise `TrainingDiverged`.
    Returns the scores and the stage's timings."""
    timings = {"load_s": round(data.load_s, 3)}
    tick = time.perf_counter()
    # `predict` and new data's flags use the protocol's anomaly fraction where it has one
    detector.set_contamination(data.split.contamination)
    with step(f"fitting {detector.name} on {len(data.x_train)} normal rows"):
        detector.fit(data.x_train, data.x_val)
    timings["fit_s"] = round(time.perf_counter() - tick, 3)
    tick = time.perf_counter()
    scores = score_in_chunks(detector, data.x_test, score_batch_size, partial=partial)
    timings["score_s"] = round(time.perf_counter() - tick, 3)
    resumed_at = partial.resumed_at_row if partial is not None else 0
    if resumed_at:  # this sitting scored the rest: its speed is of those rows
        timings["score_resumed_at_row"] = resumed_at
    timings["score_samples_per_s"] = round((len(data.x_test) - resumed_at) / max(timings["score_s"], 1e-9), 1)
    if not np.isfinite(scores).all():
        raise TrainingDiverged(f"{int((~np.isfinite(scores)).sum())} test scores are NaN or inf")
    return scores, timings


def objective(config: dict, detector: Detector, data: PreparedData, metrics: dict) -> float | None:
    """What a hyperparameter search minimises or maximises (`optimize`): by default `val_loss`, the detector's
    loss on the normal validation rows (None without them); a test metric only with
    `allow_test_selection=true` (checked by `config.check_run_config`)."""
    name = config.get("optimize") or "val_loss"
    if name != "val_loss":
        return metrics.get(name)
    return None if data.x_val is None or not len(data.x_val) else detector.validation_loss(data.x_val)


def describe_run(config: dict, data: PreparedData) -> dict:
    """The row's description of what ran on which data (before anything is fitted)."""
    raw, split = data.raw, data.split
    row = {
        "status": "running", "model": config["model"]["name"], "dataset": raw.name, "dataset_source": raw.source,
        "protocol": split.protocol,
        # image protocols record the class they resolved (its name, e.g. "3" or "cat"; None for cross_dataset)
        "normal_class": split.normal_class if raw.is_image else config["dataset"].get("normal_class"),
        "seed": int(config["seed"]), "metrics": {}, "sizes": split.sizes(),
        "anomaly_ratio_test": float(split.test_labels.mean()), "contamination": split.contamination,
        "n_features": raw.n_features, "feature_shape": list(raw.features.shape[1:]), "data_files": raw.files,
        "timings": {"load_s": round(data.load_s, 3)},
    }
    if split.anomaly_dataset is not None:
        row.update(anomaly_dataset=split.anomaly_dataset, anomaly_data_files=data.anomaly_raw.files)
    return row


def record_result(folder: Path, row: dict, config: dict, detector: Detector, started: tuple[float, str],
                  job_dir: str | None, deep: bool) -> None:
    """Stage 3: complete the row with the run's bookkeeping and write `result.json` atomically."""
    row["timings"]["total_s"] = round(time.perf_counter() - started[0], 3)
    code = code_version()
    row.update({
        "device": detector.device, "versions": versions(), "code_version": code["label"],
        "git_revision": code["git_revision"], "git_dirty": code["git_dirty"], "resumed_from": detector.resumed_from,
        # the runs that shared this one's wall time (`timings.total_s`) in its pack, itself included; 1: alone
        "pack_members": detector.pack_members,
        "started_at": started[1], "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "log_dir": job_dir, "config_hash": config_hash(config, deep), "config": config,
        "optimize": config.get("optimize") or "val_loss",
        "allow_test_selection": bool(config.get("allow_test_selection")),
    })
    write_json_atomic(folder / RESULT_FILE, row)


def score_in_chunks(detector: Detector, x: np.ndarray, chunk_size: int, what: str = "test rows",
                    partial: PartialScores | None = None) -> np.ndarray:
    """Score `x` in chunks of `chunk_size` rows (on a CPU at most the detector's `score_chunk_rows`), with a
    progress bar on a terminal; the detector's scores must not depend on the chunking. `partial`: where the
    scores so far are kept: the scoring goes on from the rows it holds (its `resumed_at_row`), keeps them
    after every chunk, and removes the file once every row is scored."""
    on_cpu = str(getattr(detector, "device", "cpu")).startswith("cpu")  # a GPU keeps its large chunks
    cap = detector.score_chunk_rows if on_cpu else None
    chunk_size = max(1, min(chunk_size, cap or chunk_size))
    done = partial.resume(detector, x) if partial is not None else None
    parts = [] if done is None else [np.asarray(done, dtype=np.float64)]
    first = 0 if done is None else len(done)
    with progress(f"scoring {len(x)} {what}", total=len(x)) as advance:
        advance(first)
        for start in range(first, len(x), chunk_size):
            chunk = x[start:start + chunk_size]
            parts.append(np.asarray(detector.score_samples(chunk), dtype=np.float64).reshape(-1))
            advance(len(chunk))
            if partial is not None:
                partial.save(parts)
    if partial is not None:
        partial.discard()
    return np.concatenate(parts) if parts else np.empty(0)


PARTIAL_SCORES_FILE = "test_scores.partial.npz"


class PartialScores:
    """The test scores of a deep run saved while they are computed (every `seconds`, in the run's checkpoints
    folder; or those of new inputs, beside `ganad-bench-score`'s output), so that an interrupted scoring goes
    on from its last saved row when started again, as training goes on from its last epoch: AnoGAN's latent
    search takes hours for MNIST's 10,000 test images on a CPU. Saved scores count only for the same rows
    scored by the same network on the same kind of device (a digest of both is saved with them); as scores
    do not depend on the chunking, the resumed scores are those of one sitting. A file that cannot be
    written is warned about once and the scoring goes on without."""

    def __init__(self, path: Path, seconds: float):
        self.path: Path | None = Path(path)
        self.seconds = float(seconds)
        self.scored: tuple[Detector, np.ndarray] | None = None  # what `resume` was given, for the key
        self._key: str | None = None
        self.resumed_at_row = 0  # the row this sitting's scoring began at
        self.last_save = time.monotonic()

    @property
    def key(self) -> str:
        """The rows' count and digest and the network's (`DeepDetector.scoring_digest`), computed when first
        needed: a run that scores in less than `seconds` and finds nothing saved never hashes its rows."""
        if self._key is None:
            detector, x = self.scored
            digest = hashlib.blake2b(np.ascontiguousarray(x).view(np.uint8).reshape(-1), digest_size=16)
            self._key = f"{len(x)} {digest.hexdigest()} {detector.scoring_digest()}"
        return self._key

    def resume(self, detector: Detector, x: np.ndarray) -> np.ndarray | None:
        """The saved scores of the first rows of `x`, or None (nothing saved, or saved for other rows or
        weights: the scoring starts from the first row)."""
        self.scored, self._key, self.resumed_at_row = (detector, x), None, 0
        self.last_save = time.monotonic()
        if not self.path.exists():
            return None
        try:
            saved = read_npz(self.path, required=("scores", "key"))
        except UnreadableArrays as err:
            log.warning("partial scores %s unreadable (%s): scoring from the first row", self.path, err)
            return None
        scores = saved["scores"]
        if str(saved["key"]) != self.key or scores.ndim != 1 or len(scores) > len(x):
            log.info("partial scores %s are of other rows or weights: scoring from the first row", self.path)
            return None
        log.info("resuming the scoring at row %d of %d (%s)", len(scores), len(x), self.path)
        self.resumed_at_row = len(scores)
        return scores

    def save(self, parts: list[np.ndarray]) -> None:
        """Write the scores so far (whole or not at all) once `seconds` have passed since the last write."""
        if self.path is None or time.monotonic() - self.last_save < self.seconds:
            return
        scores = np.concatenate(parts)
        try:
            write_atomic(self.path, lambda out: np.savez(out, scores=scores, key=np.array(self.key)), binary=True)
        except OSError as err:  # the scoring goes on; only an interruption would cost more
            log.warning("could not keep the scores so far in %s (%s): scoring on without", self.path, err)
            self.path = None
        self.last_save = time.monotonic()

    def discard(self) -> None:
        """The scoring is complete: the partial file goes (a killed run's would only be read again)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

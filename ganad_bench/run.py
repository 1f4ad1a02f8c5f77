"""`run(cfg) -> result row`: the only orchestration code. Importable and testable without Hydra's
entry point: compose a config, call `run`, read the row.

Order of a run: validate the config and locate the data (user errors raise `GanadError` here, before
any result file exists) -> skip when a finished row for the same config exists (unless `force`) ->
split by the protocol -> scale (fitted on the training rows) -> fit -> score the test set in chunks ->
metrics -> one atomic `result.json`. A failure after the data is ready (a crash or a NaN in training)
is recorded in the row with its status and error, so a sweep goes on.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from ganad_bench import __version__
from ganad_bench.config import to_container
from ganad_bench.console import progress, step
from ganad_bench.data.files import DataSettings
from ganad_bench.data.preprocessing import make_scaler
from ganad_bench.data.protocols import make_split
from ganad_bench.data.registry import load_raw
from ganad_bench.errors import GanadError, TrainingDiverged
from ganad_bench.metrics import evaluate
from ganad_bench.models.registry import create_detector
from ganad_bench.results.store import RESULT_FILE, config_hash, finished, run_dir, write_json_atomic
from ganad_bench.training.device import resolve_device, seed_everything

log = logging.getLogger("ganad_bench")


def run(cfg: DictConfig, job_dir: str | None = None) -> dict:
    config = to_container(cfg)
    folder = run_dir(Path(config["paths"]["results_dir"]), config)
    if not config.get("force"):
        existing = finished(folder)
        if existing is not None:
            return {**existing, "skipped": True, "result_path": str(folder / RESULT_FILE)}

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seed = int(config["seed"])
    device = resolve_device(config["trainer"]["device"])
    # deep detectors checkpoint every epoch into the run's own folder, so rerunning an interrupted
    # config resumes its training where it stopped
    detector = create_detector(config["model"]["name"], seed=seed, trainer=config["trainer"],
                               checkpoint_dir=str(folder / "checkpoints"), **(config["model"].get("params") or {}))
    scaler = make_scaler(config["dataset"])
    settings = DataSettings.from_config(config["paths"])
    with step(f"loading {config['dataset']['name']}"):
        raw = load_raw(config["dataset"]["name"], config["dataset"].get("source"), settings)
    anomaly_raw = None
    if config["protocol"].get("anomaly_dataset"):  # cross_dataset: the anomalies come from dataset B
        with step(f"loading {config['protocol']['anomaly_dataset']} (anomalies)"):
            anomaly_raw = load_raw(config["protocol"]["anomaly_dataset"], config["protocol"].get("anomaly_source"),
                                   settings)
    split = make_split(cfg.protocol, raw, seed, normal_class=config["dataset"].get("normal_class"),
                       anomaly_raw=anomaly_raw)
    load_s = time.perf_counter() - started

    row = {
        "status": "running",
        "model": config["model"]["name"],
        "dataset": raw.name,
        "dataset_source": raw.source,
        "protocol": split.protocol,
        # image protocols record the class they resolved (its name, e.g. "3" or "cat"; None for cross_dataset)
        "normal_class": split.normal_class if raw.is_image else config["dataset"].get("normal_class"),
        "seed": seed,
        "metrics": {},
        "sizes": split.sizes(),
        "anomaly_ratio_test": float(split.test_labels.mean()),
        "contamination": split.contamination,
        "n_features": raw.n_features,
        "data_files": raw.files,
    }
    if split.anomaly_dataset is not None:
        row.update(anomaly_dataset=split.anomaly_dataset, anomaly_data_files=anomaly_raw.files)
    timings = {"load_s": round(load_s, 3)}
    try:
        seed_everything(seed)
        scaler.fit(raw.features[split.train])  # training rows only
        x_train = scaler.transform(raw.features[split.train])
        x_val = scaler.transform(raw.features[split.val]) if len(split.val) else None
        x_test = scaler.transform(split.test_features(raw.features))
        tick = time.perf_counter()
        with step(f"fitting {row['model']} on {len(x_train)} normal rows"):
            detector.fit(x_train, x_val)
        timings["fit_s"] = round(time.perf_counter() - tick, 3)
        tick = time.perf_counter()
        scores = score_in_chunks(detector, x_test, int(config["trainer"]["score_batch_size"]))
        timings["score_s"] = round(time.perf_counter() - tick, 3)
        timings["score_samples_per_s"] = round(len(x_test) / max(timings["score_s"], 1e-9), 1)
        if not np.isfinite(scores).all():
            raise TrainingDiverged(f"{int((~np.isfinite(scores)).sum())} test scores are NaN or inf")
        row["metrics"] = evaluate(split.test_labels, scores, split.contamination)
        if hasattr(detector, "write_artifacts"):  # e.g. MEMGAN's decoded memory units (memory.png)
            row["artifacts"] = detector.write_artifacts(folder)
        row["fit_rows"] = int(getattr(detector, "fit_rows", 0) or len(x_train))
        row["status"] = "ok"
    except GanadError:
        raise
    except TrainingDiverged as err:
        row.update(status="diverged", error=str(err))
    except Exception as err:  # recorded, not swallowed: the row says failed and the CLI exits non-zero
        row.update(status="failed", error=f"{type(err).__name__}: {err}")
        log.error("run failed:\n%s", traceback.format_exc())

    timings["total_s"] = round(time.perf_counter() - started, 3)
    row.update({
        "timings": timings,
        "device": str(device) if getattr(detector, "uses_trainer", False) else "cpu",
        "versions": versions(),
        "git_revision": git_revision(),
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "log_dir": job_dir,
        "config_hash": config_hash(config),
        "config": config,
    })
    write_json_atomic(folder / RESULT_FILE, row)
    return {**row, "result_path": str(folder / RESULT_FILE)}


def score_in_chunks(detector, x: np.ndarray, chunk_size: int) -> np.ndarray:
    """Score `x` in chunks of `chunk_size` rows (the detector's scores must not depend on the chunking)."""
    chunk_size = max(1, chunk_size)
    parts = []
    with progress(f"scoring {len(x)} test rows", total=len(x)) as advance:
        for start in range(0, len(x), chunk_size):
            chunk = x[start:start + chunk_size]
            parts.append(np.asarray(detector.score_samples(chunk), dtype=np.float64).reshape(-1))
            advance(len(chunk))
    return np.concatenate(parts) if parts else np.empty(0)


def versions() -> dict[str, str]:
    import hydra
    import omegaconf
    import sklearn
    import torch

    return {"ganad_bench": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "scikit_learn": sklearn.__version__, "hydra": hydra.__version__,
            "omegaconf": omegaconf.__version__}


def git_revision() -> str | None:
    """The checkout's commit when running from a git working tree (None for an installed package)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None

"""One folder per run, named from the run's identity, holding `result.json` written atomically, and the
lock that keeps two processes from training the same run.

The identity is exactly the part of the (checked, canonical) config that can change a result: not where
files live, `force`, progress bars, chunk sizes, checkpoint cadence, settings the run's protocol does not
use, nor, for the classic detectors, the trainer group. Its SHA-256 names the folder, so running the same
config again finds the finished row and skips it, however the sweep that produced it was launched.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ganad_bench.atomic import write_atomic
from ganad_bench.config import (
    ADDED_MODEL_PARAMS,
    ADDED_TRAINER_DEFAULTS,
    BOOKKEEPING_TRAINER_KEYS,
    at_added_default,
    without_inert_trainer_keys,
)
from ganad_bench.data.protocols import ADDED_TABULAR_DEFAULTS, PROTOCOL_KEYS
from ganad_bench.errors import require_folder

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ganad_bench")

# where files go and what a run keeps or reports never change its result
NON_IDENTITY_KEYS = ("paths", "force", "hydra", "plots", "logger", "optimize", "allow_test_selection")
RESULT_FILE = "result.json"
LOCK_FILE = ".lock"
# dataset keys that act only through the protocol's interpolations (tabular.yaml)
DATASET_VIA_PROTOCOL = ("train_fraction", "contamination")
# protocol keys added after runs were made, hashed only when set off their default: a run from before the key
# existed (which behaved as the default) keeps its folder
HASHED_WHEN_SET = ADDED_TABULAR_DEFAULTS


def identity(config: dict, trains_networks: bool = True) -> dict:
    """The part of a checked config that can change the run's result (module docstring)."""
    config = without_inert_trainer_keys(config)
    out = {key: value for key, value in config.items() if key not in NON_IDENTITY_KEYS}
    protocol = config.get("protocol") or {}
    used = PROTOCOL_KEYS.get(protocol.get("name"), tuple(protocol))
    out["protocol"] = {k: v for k, v in protocol.items() if (k == "name" or k in used)
                       and not at_added_default(k, v, HASHED_WHEN_SET)}
    out["dataset"] = {k: v for k, v in (config.get("dataset") or {}).items() if k not in DATASET_VIA_PROTOCOL}
    model = config.get("model") or {}
    added = ADDED_MODEL_PARAMS.get(model.get("name"), {})
    if added and isinstance(model.get("params"), dict):
        params = {k: v for k, v in model["params"].items() if not at_added_default(k, v, added)}
        out["model"] = {**model, "params": params}
    trainer = config.get("trainer") or {}
    out["trainer"] = {k: v for k, v in trainer.items() if trains_networks and k not in BOOKKEEPING_TRAINER_KEYS
                      and not at_added_default(k, v, ADDED_TRAINER_DEFAULTS)}
    return out


def config_hash(config: dict, trains_networks: bool = True) -> str:
    blob = json.dumps(identity(config, trains_networks), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def run_dir(results_dir: Path, config: dict, trains_networks: bool = True) -> Path:
    """`<results>/<dataset>/<protocol>/<model>/<normal class>/seed<seed>-<hash>`: readable and unique. Every
    part is a checked name or integer (`config.check_run_config`), never raw user text."""
    normal_class = config.get("dataset", {}).get("normal_class")
    protocol = config["protocol"]
    if protocol["name"] == "cross_dataset":  # every class is normal; the anomalies come from elsewhere
        part = f"vs-{protocol.get('anomaly_dataset')}"
    elif protocol["name"] == "leave_one_class_out":  # every class but one is normal
        part = f"anomaly-class{protocol.get('anomaly_class')}"
    else:
        part = "all" if normal_class is None else f"class{normal_class}"
    return (
        Path(results_dir)
        / str(config["dataset"]["name"])
        / str(protocol["name"])
        / str(config["model"]["name"])
        / part
        / f"seed{config['seed']}-{config_hash(config, trains_networks)[:12]}"
    )


def write_json_atomic(path: Path, payload: dict) -> None:
    """The row as JSON, written whole or not at all (`atomic.write_atomic`)."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    write_atomic(path, lambda out: out.write(text))


# What every row `run.record_result` writes holds, whatever its status, and what the tables group by: a
# result.json without them (cut short or edited by hand, written by another tool) is not a row. It is named
# as unreadable by the tables rather than dropped in silence, and a run whose file it is trains again
# rather than being skipped as finished.
ROW_FIELDS = {"status": str, "model": str, "dataset": str, "protocol": str, "seed": int, "metrics": dict}


def is_row(row) -> bool:
    """Whether `row` (a parsed result.json) has `ROW_FIELDS` with their types and numbers (or null) as its
    metrics."""
    return (isinstance(row, dict)
            and all(type(row.get(key)) is kind for key, kind in ROW_FIELDS.items())  # a bool is no seed
            and all(value is None or type(value) in (int, float) for value in row["metrics"].values()))


def read_result(folder: Path) -> dict | None:
    """The row in `folder`, or None when there is none or it cannot be read or is not a row (`is_row`;
    `iter_results` lists those)."""
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return row if is_row(row) else None


def finished(folder: Path) -> dict | None:
    """The row of a successfully finished run, or None (missing, failed, or unreadable)."""
    row = read_result(folder)
    return row if row is not None and row.get("status") == "ok" else None


def trained_epochs(folder: Path) -> int | None:
    """How many epochs an unfinished run has trained: the epoch of its last checkpoint
    (`checkpoints/last.pt`, memory-mapped, so that a large one is not read whole), 0 for a run that has only
    a stage's checkpoint (a pretraining), None for one that has none (or an unreadable one)."""
    folder = Path(folder) / "checkpoints"
    path = folder / "last.pt"
    if not path.is_file():
        return 0 if folder.is_dir() and any(folder.glob("*/last.pt")) else None
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # truncated or foreign: the run sets it aside when it resumes; here it is just not counted
        return None


def iter_results(folders: Iterable[Path], unreadable: list[Path] | None = None,
                 with_folder: bool = False) -> list[dict]:
    """Every readable result row under the given folders, once per config hash (the newest wins); the paths
    of rows that cannot be read are appended to `unreadable`. `with_folder`: each row gets its `run_dir`."""
    rows: dict[str, dict] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob(RESULT_FILE)):
            row = read_result(path.parent)
            if row is None:
                if unreadable is not None:
                    unreadable.append(path)
                continue
            if with_folder:
                row = {"run_dir": str(path.parent), **row}
            key = row.get("config_hash", str(path))
            if key not in rows or str(row.get("finished_at", "")) > str(rows[key].get("finished_at", "")):
                rows[key] = row
    return list(rows.values())


def copy_rows(folders: Iterable[Path], dest: Path, unreadable: list[Path] | None = None,
              replace: bool = False) -> tuple[int, int, list[Path]]:
    """Copy every readable `result.json` under `folders` to the same place under `dest` (each written whole:
    `atomic.write_atomic`), without the scores, checkpoints and plots beside it: a folder of rows alone,
    a few KB a run, that can be committed beside the report made from it and read by every command that
    reads result rows. A row already at its place under `dest` that differs (the same run measured again:
    other timings, or other numbers on another machine) is kept unless `replace`: a committed measurement is
    never lost to a rerun unasked. Returns (copied, already identical, kept rows under `dest`); the paths of
    unreadable rows are appended to `unreadable` and not copied."""
    dest = Path(dest)
    copied = same = 0
    kept: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        for path in sorted(folder.rglob(RESULT_FILE)):
            if read_result(path.parent) is None:
                if unreadable is not None:
                    unreadable.append(path)
                continue
            blob = path.read_bytes()
            target = dest / path.relative_to(folder)
            if target.is_file():
                if target.read_bytes() == blob:
                    same += 1
                    continue
                if not replace and read_result(target.parent) is not None:  # an unreadable one is replaced
                    kept.append(target)
                    continue
            write_atomic(target, lambda out, blob=blob: out.write(blob), binary=True)
            copied += 1
    return copied, same, kept


class RunLock:
    """An exclusive lock on `<run folder>/.lock` (`fcntl.flock`), held while a process trains the run, so
    that two sweeps on one output folder never train the same run twice. The kernel releases it when its
    holder exits or is killed (SIGKILL included), so a lock left by a dead process is simply taken over; the
    file stays and records the last holder (pid, host, time).

        with RunLock(folder) as lock:
            if not lock.acquired: ...      # lock.holder says who runs it
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self.acquired = False
        self.holder = ""
        self._handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            self.holder = self._handle.read().strip() or "another process"
            self._handle.close()
            return self
        self.acquired = True
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self._handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.acquired:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files and folders (`.*.part`: a checkpoint folder being copied from a training
    twin) a killed process left in a run folder. Only the lock's holder calls this, so no other process is
    writing there."""
    stale = list(Path(folder).rglob(".*.part"))
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(stale), folder)
    return stale


def require_row_folders(folders: Iterable[Path]) -> None:
    """A one-line ConfigError when a folder of result rows is missing or is a file (e.g. a result.json): a
    misspelt folder is an error, not an empty frame that reads as "no runs yet"."""
    for folder in folders:
        require_folder(folder, "give the folder of the rows, e.g. outputs/results", missing="run ganad-bench first")


def load_results(folders: Iterable[Path] | Path) -> pd.DataFrame:
    """Every result row under the folders (finished, failed and diverged ones alike), one line each, with
    the run folder, status and error, code version, and the nested fields flattened with dots:
    `metrics.auroc`, `timings.fit_s`, `config.trainer.lr`, `config.model.params.width`, ...

        frame = load_results("outputs/results")
        frame[frame.status == "ok"].groupby(["model", "dataset"])["metrics.f1"].agg(["mean", "std", "count"])
    """
    import pandas as pd

    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    require_row_folders(folders)
    rows = []
    for folder in folders:
        for path in sorted(folder.rglob(RESULT_FILE)):
            row = read_result(path.parent)
            if row is not None:
                rows.append({"run_dir": str(path.parent), **row})
    if not rows:
        return pd.DataFrame()
    return pd.json_normalize(rows, sep=".")

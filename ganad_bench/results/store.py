"""One folder per run, named from the run's identity, holding `result.json` written atomically.

The identity is the resolved config minus the keys that do not change the result (where files live,
`force`); its SHA-256 names the folder, so running the same config again finds the finished row and
skips it, however the sweep that produced it was launched.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

NON_IDENTITY_KEYS = ("paths", "force", "hydra")
RESULT_FILE = "result.json"


def identity(config: dict) -> dict:
    return {key: value for key, value in config.items() if key not in NON_IDENTITY_KEYS}


def config_hash(config: dict) -> str:
    blob = json.dumps(identity(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def run_dir(results_dir: Path, config: dict) -> Path:
    """`<results>/<dataset>/<protocol>/<model>/<normal class>/seed<seed>-<hash>`: readable and unique."""
    normal_class = config.get("dataset", {}).get("normal_class")
    protocol = config["protocol"]
    if protocol["name"] == "cross_dataset":  # every class is normal; the anomalies come from elsewhere
        part = f"vs-{protocol.get('anomaly_dataset')}"
    else:
        part = "all" if normal_class is None else f"class{normal_class}"
    return (
        Path(results_dir)
        / str(config["dataset"]["name"])
        / str(protocol["name"])
        / str(config["model"]["name"])
        / part
        / f"seed{config['seed']}-{config_hash(config)[:12]}"
    )


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers see the old file or
    the whole new one, never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(payload, out, indent=2, sort_keys=False, default=str)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(folder: Path) -> dict | None:
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def finished(folder: Path) -> dict | None:
    """The row of a successfully finished run, or None (missing, failed, or unreadable)."""
    row = read_result(folder)
    return row if row is not None and row.get("status") == "ok" else None


def iter_results(folders: Iterable[Path]) -> list[dict]:
    """Every readable result row under the given folders, once per config hash (the newest wins)."""
    rows: dict[str, dict] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob(RESULT_FILE)):
            row = read_result(path.parent)
            if row is None:
                continue
            key = row.get("config_hash", str(path))
            if key not in rows or str(row.get("finished_at", "")) > str(rows[key].get("finished_at", "")):
                rows[key] = row
    return list(rows.values())

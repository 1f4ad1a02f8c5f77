"""Shared fixtures: tiny data files in the canonical formats, written by the tests themselves, and
configs composed with Hydra's compose API into tmp_path."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from ganad_bench.data import registry
from ganad_bench.data import tabular_sources as tab
from ganad_bench.data.files import sha256_of

# `make test` runs the suite in one worker process per core (pytest-xdist): each worker, and every process its
# tests start, computes on one thread, since two workers' thread pools on the same cores slow both down
# (ALAD on Thyroid: 47 ms a step on one thread, 330 ms on two threads of a busy core)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """scripts/<name>.py imported as a module (the scripts are files, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHARED_DATA = Path(os.environ.get("GANAD_SHARED_DATA", REPO.parent / "shared" / "data"))
# a user's data and cache folders must not reach the tests (a test that expects a missing file would find theirs):
# the tests find data where they write it, and the real-data tests in SHARED_DATA
for _setting in ("GANAD_DATA_DIR", "GANAD_CACHE_DIR"):
    os.environ.pop(_setting, None)



def kdd_names_text() -> tuple[str, list[str]]:
    """kddcup.names as UCI ships it: the attack list, then 41 `name: type.` lines in file order."""
    order = ["duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
             "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
             "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
             "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
             "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
             "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
             "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
             "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
             "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate"]
    lines = ["back,buffer_overflow,normal,smurf."]
    for name in order:
        kind = "symbolic" if name in tab.KDD_CATEGORICAL else "continuous"
        lines.append(f"{name}: {kind}.")
    return "\n".join(lines) + "\n", order


def write_kdd(folder: Path, n: int = 400, seed: int = 0) -> Path:
    """A tiny kddcup.data_10_percent.gz + kddcup.names; ~20% `normal.` rows, shifted so they are
    detectable (as in the real file, where they are the anomalies)."""
    rng = np.random.default_rng(seed)
    text, order = kdd_names_text()
    target = folder / "kddcup99"
    target.mkdir(parents=True, exist_ok=True)
    (target / "kddcup.names").write_text(text)
    rows = []
    for i in range(n):
        is_normal = i % 5 == 0
        fields = []
        for name in order:
            if name == "protocol_type":
                fields.append(["tcp", "udp", "icmp"][i % 3])
            elif name == "service":
                fields.append("http" if is_normal else ["ecr_i", "private"][i % 2])
            elif name == "flag":
                fields.append(["SF", "S0"][i % 2])
            elif name in ("land", "logged_in", "is_host_login", "is_guest_login"):
                fields.append(str(int(is_normal and name == "logged_in")))
            else:
                fields.append(f"{rng.normal(3.0 if is_normal else 0.0, 1.0):.4f}")
        fields.append("normal." if is_normal else ["smurf.", "back."][i % 2])
        rows.append(",".join(fields))
    with gzip.open(target / "kddcup.data_10_percent.gz", "wt") as out:
        out.write("\n".join(rows) + "\n")
    return target


def write_odds(folder: Path, name: str, n: int = 300, d: int = 6, n_anomalies: int = 15, seed: int = 0) -> Path:
    """An ODDS-style .mat (MATLAB v5, X float64 and y n x 1) with shifted anomalies."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.zeros((n, 1))
    y[:n_anomalies] = 1
    x[:n_anomalies] += 4.0
    path = folder / "odds" / f"{name}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"X": x, "y": y})
    return path


def write_uci_arrhythmia(folder: Path, n: int = 60, seed: int = 0) -> Path:
    """A tiny arrhythmia.data: 279 attributes + class, '?' in five columns, as the UCI file."""
    rng = np.random.default_rng(seed)
    classes = np.array([1, 2, 3, 10, 14, 16] * (n // 6))
    lines = []
    for label in classes:
        values = [f"{v:.2f}" for v in rng.normal(size=279)]
        for col in (10, 11, 12, 13, 14):
            if rng.random() < 0.3:
                values[col] = "?"
        lines.append(",".join([*values, str(label)]))
    path = folder / "uci_arrhythmia" / "arrhythmia.data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def committed_rows() -> list[dict]:
    """The campaign's committed rows (campaign/results), read once: REPRODUCTION.md and the shipped run times
    are made from them."""
    from ganad_bench.results.store import iter_results

    return iter_results([REPO / "campaign" / "results"])


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A data folder with tiny KDD99, Musk, Arrhythmia (ODDS + UCI) files; the registry's checksums
    are replaced by the tiny files' own, so the real verification path runs."""
    data = tmp_path / "data"
    write_kdd(data)
    write_odds(data, "musk", n=300, d=16, n_anomalies=12)
    write_odds(data, "arrhythmia", n=120, d=20, n_anomalies=18)
    write_uci_arrhythmia(data)
    patched = {}
    for name, sources in registry.SOURCES.items():
        patched[name] = {}
        for source, spec in sources.items():
            files = []
            for file in spec.files:
                path = data / file.subdir / file.name
                files.append(dataclasses.replace(file, sha256=sha256_of(path)) if path.is_file() else file)
            parse = spec.parse
            if name == "kdd99":  # the tiny file has fewer categories than the real 121 columns
                parse = functools.partial(tab.parse_kdd99, expected_features=None)
            patched[name][source] = dataclasses.replace(spec, files=tuple(files), parse=parse)
    monkeypatch.setattr(registry, "SOURCES", patched)
    return data


@pytest.fixture
def make_cfg(tmp_path):
    """Compose the app's config with overrides, every path under tmp_path, downloads off."""

    def make(*overrides: str, data_dir: Path | None = None, model: str | None = "iforest"):
        """`model`: the model the test runs unless an override names one (None: the app's default, RCGAN)."""
        base = [f"paths.output_dir={tmp_path / 'outputs'}", f"paths.cache_dir={tmp_path / 'cache'}",
                "paths.download=false"]
        if model is not None and not any(o.startswith(("model=", "experiment=")) for o in overrides):
            base.append(f"model={model}")
        if data_dir is not None:
            base.append(f"paths.data_dir={data_dir}")
        with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
            return compose(config_name="config", overrides=[*base, *overrides])

    return make


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set GANAD_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """Tiny networks train fastest on one intra-op thread (and are then immune to a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Parsers for the canonical files of the four tabular benchmarks (DESIGN.md, Datasets table).

Each parser returns features and ORIGINAL labels; the anomaly definition travels beside them in
`RawDataset.anomaly_labels` and is applied by the `tabular` protocol only.
"""

from __future__ import annotations

import numpy as np

from ganad_bench.data.files import CanonicalFile
from ganad_bench.errors import DataError

KDD_PAGE = "http://kdd.ics.uci.edu/databases/kddcup99/kddcup99.html"
ODDS_PAGE = "http://odds.cs.stonybrook.edu/ (the dataset's page)"
UCI_ARRHYTHMIA_PAGE = "https://archive.ics.uci.edu/ml/datasets/Arrhythmia"

KDD_DATA = CanonicalFile(
    name="kddcup.data_10_percent.gz",
    subdir="kddcup99",
    sha256="8045aca0d84e70e622d1148d7df782496f6333bf6eb979a1b0837c42a9fd9561",
    page=KDD_PAGE,
    urls=("http://kdd.ics.uci.edu/databases/kddcup99/kddcup.data_10_percent.gz",),
)
KDD_NAMES = CanonicalFile(
    name="kddcup.names",
    subdir="kddcup99",
    sha256="24ad45a4c5de85cd73bcc81cf4965a58bbf3e83b48c6e6d3b0284119e7d42efd",
    page=KDD_PAGE,
    urls=("http://kdd.ics.uci.edu/databases/kddcup99/kddcup.names",),
)
ODDS_FILES = {
    "thyroid": CanonicalFile(
        name="thyroid.mat",
        subdir="odds",
        sha256="49155d7861b977e90808faf68343ff67a67f63090c2744d514dbb67ac68e7e33",
        page="http://odds.cs.stonybrook.edu/thyroid-disease-dataset/",
    ),
    "musk": CanonicalFile(
        name="musk.mat",
        subdir="odds",
        sha256="50bbf414caceb66cfe6f6b1eb7c1ff7c6eb1e6d87173f7bb597ba55cd3dc5493",
        page="http://odds.cs.stonybrook.edu/musk-dataset/",
    ),
    "arrhythmia": CanonicalFile(
        name="arrhythmia.mat",
        subdir="odds",
        sha256="e4d47e499591ae31e5d7f0cd983367092353eac240f48e14c9b36457edb3460d",
        page="http://odds.cs.stonybrook.edu/arrhythmia-dataset/",
    ),
}
UCI_ARRHYTHMIA = CanonicalFile(
    name="arrhythmia.data",
    subdir="uci_arrhythmia",
    sha256="59a3360ee531a55cec553cd2cd1eaeab143ba8658d1b324a08fb7941f39ade2e",
    page=UCI_ARRHYTHMIA_PAGE,
    urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/arrhythmia/arrhythmia.data",),
)

# KDD99: the 7 symbolic columns one-hot encoded (ALAD appendix, "Preprocessing": 121 features).
KDD_CATEGORICAL = ("protocol_type", "service", "flag", "land", "logged_in", "is_host_login", "is_guest_login")
KDD_N_FEATURES = 121
# Arrhythmia: the smallest classes are the anomalies (ALAD Sec. V, RCGAN Sec. 5.3; ODDS uses the same).
ARRHYTHMIA_ANOMALY_CLASSES = (3, 4, 5, 7, 8, 9, 14, 15)


def parse_kdd99(data_path, names_path, expected_features: int | None = KDD_N_FEATURES) -> dict[str, np.ndarray]:
    """kddcup.data_10_percent.gz + kddcup.names -> 121 one-hot/continuous features and label strings.

    Categories are sorted, so the column order is the same on every machine. `normal.` rows are the
    anomalies of this benchmark (they are the ~20 % minority); see `RawDataset.anomaly_labels`.
    `expected_features` guards against a non-canonical file (None skips the check, for tiny test files)."""
    import pandas as pd

    names = _kdd_feature_names(names_path)
    try:
        frame = pd.read_csv(data_path, header=None, names=[*names, "label"], compression="gzip")
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{data_path} is not a readable KDD99 gzip CSV ({err}): replace it from {KDD_PAGE}") from None
    if frame.shape[1] != 42 or frame["label"].isna().any():
        raise DataError(f"{data_path} does not have 42 fields per row: replace it from {KDD_PAGE}")
    labels = frame.pop("label").to_numpy(dtype=str)  # fixed-width unicode: cacheable without pickle
    continuous = [c for c in names if c not in KDD_CATEGORICAL]
    parts = [frame[continuous].astype(np.float32)]
    for column in KDD_CATEGORICAL:
        values = frame[column].astype(str)
        for category in sorted(values.unique()):
            parts.append((values == category).astype(np.float32).rename(f"{column}={category}"))
    features = pd.concat(parts, axis=1)
    if expected_features is not None and features.shape[1] != expected_features:
        raise DataError(f"KDD99 one-hot encoding gave {features.shape[1]} features, expected {expected_features}: "
                        f"{data_path} is not the canonical 10% file ({KDD_PAGE})")
    return {
        "features": features.to_numpy(np.float32),
        "labels": labels,
        "feature_names": np.array(features.columns, dtype=str),
    }


def _kdd_feature_names(names_path) -> list[str]:
    lines = [line.strip() for line in open(names_path, encoding="ascii", errors="replace")]
    names = [line.split(":")[0].strip() for line in lines[1:] if ":" in line]
    if len(names) != 41:
        raise DataError(f"{names_path} lists {len(names)} features, expected 41: replace it from {KDD_PAGE}")
    return names


def parse_odds_mat(path) -> dict[str, np.ndarray]:
    """An ODDS .mat file (MATLAB v5, keys X and y; y = 1 marks the outliers)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        features = np.asarray(mat["X"], dtype=np.float32)
        labels = np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    except Exception as err:  # scipy raises many types on a damaged file; all mean "replace it"
        raise DataError(f"{path} is not an ODDS .mat file with keys X and y ({err}): "
                        f"replace it from {ODDS_PAGE}") from None
    if features.ndim != 2 or len(features) != len(labels):
        raise DataError(f"{path}: X is {features.shape} but y has {len(labels)} rows: replace it from {ODDS_PAGE}")
    return {"features": features, "labels": labels}


def parse_uci_arrhythmia(path) -> dict[str, np.ndarray]:
    """UCI arrhythmia.data: 279 attributes + class (1..16), '?' for missing values.

    The attributes with missing values are dropped (as ODDS did, which leaves 274 features and makes
    the result identical to ODDS arrhythmia.mat)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, header=None, na_values="?")
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not the UCI arrhythmia.data CSV ({err}): "
                        f"replace it from {UCI_ARRHYTHMIA_PAGE}") from None
    if frame.shape[1] != 280:
        raise DataError(f"{path} has {frame.shape[1]} columns, expected 280: replace it from {UCI_ARRHYTHMIA_PAGE}")
    labels = frame.pop(frame.columns[-1]).astype(np.int64).to_numpy()
    features = frame.dropna(axis=1).to_numpy(np.float32)
    return {"features": features, "labels": labels}

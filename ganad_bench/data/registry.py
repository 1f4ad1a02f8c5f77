"""Dataset registry: (dataset name, source) -> the canonical files, their parser and the anomaly
definition. `load_raw` locates and verifies the files, parses them once, and caches the arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ganad_bench.data import image_sources as img
from ganad_bench.data import tabular_sources as tab
from ganad_bench.data.cache import cached_arrays
from ganad_bench.data.dataset import RawDataset
from ganad_bench.data.files import CanonicalFile, DataSettings, locate
from ganad_bench.errors import ConfigError


@dataclass(frozen=True)
class SourceSpec:
    files: tuple[CanonicalFile, ...]
    parse: Callable[..., dict]  # called with the located paths, in the order of `files`
    anomaly_labels: tuple = ()


SOURCES: dict[str, dict[str, SourceSpec]] = {
    "kdd99": {"uci": SourceSpec((tab.KDD_DATA, tab.KDD_NAMES), tab.parse_kdd99, anomaly_labels=("normal.",))},
    "arrhythmia": {
        "odds": SourceSpec((tab.ODDS_FILES["arrhythmia"],), tab.parse_odds_mat, anomaly_labels=(1,)),
        "uci": SourceSpec((tab.UCI_ARRHYTHMIA,), tab.parse_uci_arrhythmia,
                          anomaly_labels=tab.ARRHYTHMIA_ANOMALY_CLASSES),
    },
    "thyroid": {"odds": SourceSpec((tab.ODDS_FILES["thyroid"],), tab.parse_odds_mat, anomaly_labels=(1,))},
    "musk": {"odds": SourceSpec((tab.ODDS_FILES["musk"],), tab.parse_odds_mat, anomaly_labels=(1,))},
    # Image datasets carry no anomaly definition: the image protocols derive it from dataset.normal_class.
    "mnist": {"idx": SourceSpec(img.MNIST_FILES, img.parse_mnist)},
    "fashion_mnist": {"idx": SourceSpec(img.FASHION_FILES, img.parse_fashion_mnist)},
    "cifar10": {"python": SourceSpec((img.CIFAR10_FILE,), img.parse_cifar10)},
    "svhn": {"mat": SourceSpec(img.SVHN_FILES, img.parse_svhn)},
    # AMA Table 1's anomalies for Fashion-MNIST: the two official zips, 105 x 105 glyphs resized to 28 x 28
    "omniglot": {"zip": SourceSpec(img.OMNIGLOT_FILES, img.parse_omniglot)},
}


def available_datasets() -> list[str]:
    return sorted(SOURCES)


def source_spec(name: str, source: str | None = None) -> SourceSpec:
    if name not in SOURCES:
        raise ConfigError(f"unknown dataset '{name}': choose one of {', '.join(available_datasets())}")
    sources = SOURCES[name]
    if source is None:
        source = next(iter(sources))
    if source not in sources:
        raise ConfigError(f"dataset {name} has no source '{source}': set dataset.source to one of "
                          f"{', '.join(sources)}")
    return sources[source]


def load_raw(name: str, source: str | None, settings: DataSettings) -> RawDataset:
    """Verified, parsed, cached arrays of one dataset, with its original labels."""
    spec = source_spec(name, source)
    source = source or next(iter(SOURCES[name]))
    paths = [locate(file, settings) for file in spec.files]
    checksums = {file.name: file.digest for file in spec.files}
    arrays = cached_arrays(settings.parsed_dir / cache_name(name, source, spec), lambda: spec.parse(*paths))
    return RawDataset.from_arrays(name, source, arrays, spec.anomaly_labels, checksums)


def cache_name(name: str, source: str, spec: SourceSpec) -> str:
    """`<dataset>-<source>-<key>.npz`, the key hashing the checksums of EVERY source file, so a parsed
    array never outlives any of the files it came from."""
    key = hashlib.sha256("|".join(file.digest for file in spec.files).encode()).hexdigest()[:16]
    return f"{name}-{source}-{key}.npz"

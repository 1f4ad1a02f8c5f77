"""Dataset registry: (dataset name, source) -> the canonical files, their parser and the anomaly
definition. `load_raw` locates and verifies the files, parses them once, and caches the arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    kind: str = "tabular"  # "tabular" or "image": which protocols apply


SOURCES: dict[str, dict[str, SourceSpec]] = {
    "kdd99": {"uci": SourceSpec((tab.KDD_DATA, tab.KDD_NAMES), tab.parse_kdd99, anomaly_labels=("normal.",))},
    "arrhythmia": {
        "odds": SourceSpec((tab.ODDS_FILES["arrhythmia"],), tab.parse_odds_mat, anomaly_labels=(1,)),
        "uci": SourceSpec((tab.UCI_ARRHYTHMIA,), tab.parse_uci_arrhythmia,
                          anomaly_labels=tab.ARRHYTHMIA_ANOMALY_CLASSES),
    },
    "thyroid": {"odds": SourceSpec((tab.ODDS_FILES["thyroid"],), tab.parse_odds_mat, anomaly_labels=(1,))},
    "musk": {"odds": SourceSpec((tab.ODDS_FILES["musk"],), tab.parse_odds_mat, anomaly_labels=(1,))},
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
    checksums = {file.name: file.sha256 for file in spec.files}
    cache_key = f"{name}-{source}-{spec.files[0].sha256[:16]}.npz"
    arrays = cached_arrays(settings.parsed_dir / cache_key, lambda: spec.parse(*paths))
    return tab.raw_from_arrays(name, source, arrays, spec.anomaly_labels, checksums)

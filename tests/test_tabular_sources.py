"""Loaders on tiny files in the canonical formats; file location, checksum and cache behaviour."""

import dataclasses

import numpy as np
import pytest

from ganad_bench.data import registry
from ganad_bench.data.files import CanonicalFile, DataSettings, locate
from ganad_bench.data.protocols import anomaly_flags
from ganad_bench.data.tabular_sources import parse_kdd99, parse_odds_mat, parse_uci_arrhythmia
from ganad_bench.errors import ChecksumMismatch, DataError, DataFileMissing
from tests.conftest import write_kdd, write_odds, write_uci_arrhythmia


def settings(tmp_path, data_dir=None, download=False):
    return DataSettings(data_dir=data_dir, cache_dir=tmp_path / "cache", download=download)


def test_kdd_parser_one_hot_and_labels(tmp_path):
    folder = write_kdd(tmp_path, n=50)
    arrays = parse_kdd99(folder / "kddcup.data_10_percent.gz", folder / "kddcup.names", expected_features=None)
    x, names = arrays["features"], list(arrays["feature_names"])
    # 34 continuous + protocol_type(3) + service(3) + flag(2) + land(1) + logged_in(2) + is_host(1) + is_guest(1)
    assert x.shape == (50, 34 + 3 + 3 + 2 + 1 + 2 + 1 + 1)
    one_hot = [i for i, n in enumerate(names) if n.startswith("protocol_type=")]
    assert (x[:, one_hot].sum(axis=1) == 1).all()
    assert names.index("protocol_type=icmp") < names.index("protocol_type=tcp")  # sorted categories
    assert (arrays["labels"] == "normal.").sum() == 10


def test_kdd_parser_refuses_non_canonical_width(tmp_path):
    folder = write_kdd(tmp_path, n=20)
    with pytest.raises(DataError, match="expected 121"):
        parse_kdd99(folder / "kddcup.data_10_percent.gz", folder / "kddcup.names")


def test_odds_parser(tmp_path):
    arrays = parse_odds_mat(write_odds(tmp_path, "thyroid", n=40, d=6, n_anomalies=3))
    assert arrays["features"].shape == (40, 6) and arrays["features"].dtype == np.float32
    assert arrays["labels"].sum() == 3


def test_odds_parser_rejects_garbage(tmp_path):
    path = tmp_path / "musk.mat"
    path.write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not an ODDS .mat file"):
        parse_odds_mat(path)


def test_uci_arrhythmia_drops_incomplete_attributes(tmp_path):
    arrays = parse_uci_arrhythmia(write_uci_arrhythmia(tmp_path, n=60))
    assert arrays["features"].shape[1] == 279 - 5
    assert not np.isnan(arrays["features"]).any()
    assert set(arrays["labels"]) == {1, 2, 3, 10, 14, 16}


def test_registry_loads_and_maps_labels(tiny_data, tmp_path):
    kdd = registry.load_raw("kdd99", None, settings(tmp_path, tiny_data))
    assert anomaly_flags(kdd).mean() == pytest.approx(0.2)
    uci = registry.load_raw("arrhythmia", "uci", settings(tmp_path, tiny_data))
    flags = anomaly_flags(uci)
    assert set(uci.labels[flags == 1]) == {3, 14} and set(uci.labels[flags == 0]) == {1, 2, 10, 16}
    musk = registry.load_raw("musk", "odds", settings(tmp_path, tiny_data))
    assert anomaly_flags(musk).sum() == 12


def test_embedded_thyroid_needs_no_data_folder(tmp_path):
    thyroid = registry.load_raw("thyroid", None, settings(tmp_path))
    assert thyroid.features.shape == (3772, 6) and anomaly_flags(thyroid).sum() == 93


def test_settings_made_in_code_cache_in_the_home_folder(tiny_data, tmp_path, monkeypatch):
    """DataSettings built directly (not from the CLI's config) read "~" as the home folder: the default
    cache goes to ~/.cache/ganad_bench, not to a folder named "~" in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert DataSettings().cache_dir == tmp_path / "home" / ".cache" / "ganad_bench"
    assert DataSettings(data_dir="~/data").data_dir == tmp_path / "home" / "data"
    registry.load_raw("kdd99", "uci", DataSettings(data_dir=tiny_data, download=False))
    assert list((tmp_path / "home" / ".cache" / "ganad_bench" / "parsed").glob("kdd99-*.npz"))
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("name,source", [("musk", "odds"), ("kdd99", "uci"), ("arrhythmia", "uci")])
def test_parsed_arrays_are_cached(tiny_data, tmp_path, monkeypatch, name, source):
    from ganad_bench.data import cache

    first = registry.load_raw(name, source, settings(tmp_path, tiny_data))
    assert list((tmp_path / "cache" / "parsed").glob(f"{name}-*.npz"))
    monkeypatch.setattr(cache, "_memo", {})  # a new process: only the .npz is left
    spec = registry.SOURCES[name][source]

    def fail(*args):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setitem(registry.SOURCES, name, {source: dataclasses.replace(spec, parse=fail)})
    again = registry.load_raw(name, source, settings(tmp_path, tiny_data))
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, first.labels)


def test_missing_file_message_names_file_and_place(tmp_path):
    file = CanonicalFile("musk.mat", "odds", "0" * 64, page="http://odds.example/musk")
    with pytest.raises(DataFileMissing) as err:
        locate(file, settings(tmp_path, tmp_path / "data"))
    message = str(err.value)
    assert "musk.mat not found" in message and str(tmp_path / "data" / "odds" / "musk.mat") in message
    assert "\n" not in message


def test_checksum_mismatch_is_an_error(tmp_path):
    path = write_odds(tmp_path / "data", "musk")
    file = CanonicalFile("musk.mat", "odds", "0" * 64, page="http://odds.example/musk")
    with pytest.raises(ChecksumMismatch, match="expected 000000000000"):
        locate(file, settings(tmp_path, tmp_path / "data"))
    assert path.is_file()  # never deleted or replaced silently


def test_flat_data_folder_is_accepted(tmp_path):
    path = write_odds(tmp_path / "nested", "musk")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "musk.mat").write_bytes(path.read_bytes())
    from ganad_bench.data.files import sha256_of

    file = CanonicalFile("musk.mat", "odds", sha256_of(path), page="-")
    assert locate(file, settings(tmp_path, flat)) == flat / "musk.mat"


def test_unknown_dataset_and_source():
    from ganad_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        registry.source_spec("nope")
    with pytest.raises(ConfigError, match="no source 'zzz'"):
        registry.source_spec("thyroid", "zzz")


def test_download_verifies_and_caches(tmp_path):
    from ganad_bench.data.files import sha256_of

    upstream = write_odds(tmp_path / "upstream", "musk")
    file = CanonicalFile("musk.mat", "odds", sha256_of(upstream), page="-", urls=(upstream.as_uri(),))
    path = locate(file, settings(tmp_path, download=True))
    assert path == tmp_path / "cache" / "downloads" / "odds" / "musk.mat"
    assert path.read_bytes() == upstream.read_bytes()


def test_download_with_wrong_checksum_keeps_nothing(tmp_path):
    upstream = write_odds(tmp_path / "upstream", "musk")
    file = CanonicalFile("musk.mat", "odds", "0" * 64, page="-", urls=(upstream.as_uri(),))
    with pytest.raises(DataFileMissing, match="download failed"):
        locate(file, settings(tmp_path, download=True))
    assert not list((tmp_path / "cache").rglob("musk.mat*"))

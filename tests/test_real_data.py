"""The loaders on the real canonical files (../shared/data or GANAD_SHARED_DATA); skipped when absent."""

import numpy as np
import pytest

from ganad_bench.data.files import DataSettings
from ganad_bench.data.protocols import anomaly_flags
from ganad_bench.data.registry import load_raw

pytestmark = pytest.mark.real_data


@pytest.fixture
def settings(shared_data, tmp_path):
    return DataSettings(data_dir=shared_data, cache_dir=tmp_path / "cache", download=False)


def test_kdd99(settings):
    kdd = load_raw("kdd99", None, settings)
    assert kdd.features.shape == (494021, 121) and kdd.features.dtype == np.float32
    assert anomaly_flags(kdd).sum() == 97278  # the `normal.` rows
    assert len(set(kdd.labels)) == 23


@pytest.mark.parametrize("name,shape,anomalies", [("thyroid", (3772, 6), 93), ("musk", (3062, 166), 97),
                                                   ("arrhythmia", (452, 274), 66)])
def test_odds(settings, name, shape, anomalies):
    data = load_raw(name, "odds", settings)
    assert data.features.shape == shape and anomaly_flags(data).sum() == anomalies


def test_uci_arrhythmia_equals_odds(settings):
    odds, uci = load_raw("arrhythmia", "odds", settings), load_raw("arrhythmia", "uci", settings)
    np.testing.assert_array_equal(uci.features, odds.features)
    np.testing.assert_array_equal(anomaly_flags(uci), anomaly_flags(odds))


def test_iforest_on_kdd99_matches_alad_table_ii(make_cfg, shared_data):
    from ganad_bench.run import run

    row = run(make_cfg("dataset=kdd99", data_dir=shared_data))
    assert row["sizes"]["n_test"] == 494021 - round(0.5 * 494021)
    assert abs(row["metrics"]["f1"] - 0.9294) < 0.03  # ALAD Table II, Isolation Forest

"""Invariants of the tabular protocol: no anomaly in training data, split sizes, label mapping, seeds."""

import re

import numpy as np
import pytest

from ganad_bench.data.dataset import RawDataset
from ganad_bench.data.protocols import anomaly_flags, make_split, tabular_split
from ganad_bench.errors import ConfigError


def raw(n=1000, anomaly_every=5, labels=None):
    labels = labels if labels is not None else np.array(
        ["normal." if i % anomaly_every == 0 else "smurf." for i in range(n)])
    return RawDataset("toy", "test", np.arange(len(labels) * 2, dtype=np.float32).reshape(-1, 2), labels,
                      anomaly_labels=("normal.",))


def test_kdd_label_mapping_normal_rows_are_anomalies():
    flags = anomaly_flags(raw(10))
    assert flags.tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_arrhythmia_class_mapping():
    data = RawDataset("a", "uci", np.zeros((16, 1)), np.arange(1, 17), anomaly_labels=(3, 4, 5, 7, 8, 9, 14, 15))
    assert np.flatnonzero(anomaly_flags(data)).tolist() == [2, 3, 4, 6, 7, 8, 13, 14]


@pytest.mark.parametrize("train_fraction", [0.5, 0.8])
def test_split_sizes_and_no_anomaly_in_training(train_fraction):
    data = raw(1000)
    flags = anomaly_flags(data)
    split = tabular_split(data, train_fraction, 0.2, seed=3, val_fraction=0.25)
    n_train_split = round(train_fraction * 1000)
    assert len(split.test) == 1000 - n_train_split
    assert len(split.train) + len(split.val) == n_train_split - flags[np.setdiff1d(
        np.arange(1000), split.test)].sum()
    assert flags[split.train].sum() == 0 and flags[split.val].sum() == 0
    assert len(split.val) == round(0.25 * (len(split.train) + len(split.val)))
    # train, val and test are disjoint, and the test labels are the flags of the test rows
    assert not set(split.train) & set(split.test) and not set(split.val) & set(split.test)
    assert not set(split.train) & set(split.val)
    assert (split.test_labels == flags[split.test]).all()


def test_kept_train_anomalies_join_training_only():
    """protocol.train_anomalies=keep: the train split's anomalies join the training rows; the test split,
    the normal training rows and the (normal-only) validation rows are the dropping split's."""
    data = raw(1000)
    flags = anomaly_flags(data)
    dropped = tabular_split(data, 0.5, 0.2, seed=3, val_fraction=0.25)
    kept = tabular_split(data, 0.5, 0.2, seed=3, val_fraction=0.25, train_anomalies="keep")
    assert (kept.test == dropped.test).all() and (kept.val == dropped.val).all() and flags[kept.val].sum() == 0
    in_train_split = np.setdiff1d(np.arange(1000), dropped.test)
    assert sorted(kept.train) == sorted([*dropped.train, *in_train_split[flags[in_train_split] == 1]])
    assert flags[kept.train].sum() == flags[in_train_split].sum() > 0
    with pytest.raises(ConfigError, match="protocol.train_anomalies='maybe': choose drop"):
        tabular_split(data, 0.5, 0.2, seed=3, train_anomalies="maybe")


@pytest.mark.parametrize("key,default,other", [("train_anomalies", "drop", "keep"), ("split_seed", "null", "42"),
                                               ("split_draw", "train_test_split", "sample")])
def test_protocol_keys_added_later_are_hashed_only_when_set(key, default, other):
    from ganad_bench.config import check_run_config, compose_config, to_container
    from ganad_bench.results.store import config_hash

    def hashed(*overrides):
        return config_hash(check_run_config(to_container(compose_config(["model=iforest", *overrides]))))

    before = to_container(compose_config(["model=iforest"]))
    del before["protocol"][key]  # a run made before the key existed
    assert hashed() == hashed(f"protocol.{key}={default}") == config_hash(check_run_config(before))
    fixed = ["protocol.split_seed=42"] if key == "split_draw" else []  # split_draw needs a split_seed
    assert hashed(f"protocol.{key}={other}", *fixed) != hashed(*fixed)


@pytest.mark.parametrize("train_fraction", [0.5, 0.8])
def test_a_fixed_split_seed_is_scikit_learns_split_for_every_run_seed(train_fraction):
    """protocol.split_seed=42: the rows of sklearn's train_test_split(random_state=42) (ALAD's code), whatever
    the run seed; anomalies still leave the training rows."""
    from sklearn.model_selection import train_test_split

    data = raw(452, anomaly_every=7)
    flags = anomaly_flags(data)
    train_ref, test_ref = train_test_split(np.arange(452), test_size=round(1 - train_fraction, 6), random_state=42)
    for seed in (0, 1, 7):
        split = tabular_split(data, train_fraction, 0.15, seed=seed, split_seed=42)
        assert sorted(split.test) == sorted(test_ref)
        assert sorted(split.train) == sorted(train_ref[flags[train_ref] == 0])
    assert sorted(tabular_split(data, train_fraction, 0.15, seed=0, split_seed=43).test) != sorted(test_ref)
    # 2**32: NumPy's RandomState, which draws the fixed split, takes seeds up to 2**32 - 1
    for bad in (-1, 1.5, "x", True, 2**32):
        with pytest.raises(ConfigError, match=r"protocol.split_seed=.* must be null .* or an integer from 0 to "
                                              r"4294967295 \(2\*\*32 - 1\)"):
            tabular_split(data, train_fraction, 0.15, seed=0, split_seed=bad)


@pytest.mark.parametrize("n,train_fraction", [(452, 0.5), (451, 0.5), (452, 0.8)])
def test_split_draw_sample_is_pandas_dataframe_sample_for_every_run_seed(n, train_fraction):
    """protocol.split_seed=42 protocol.split_draw=sample: the train rows of pandas'
    df.sample(frac=train_fraction, random_state=42) (ALAD's KDD99 code, data/kdd.py), whatever the run seed,
    the rest test; an odd row count rounds as pandas rounds."""
    import pandas as pd

    data = raw(n, anomaly_every=7)
    flags = anomaly_flags(data)
    frame = pd.DataFrame({"row": np.arange(n)})
    train_ref = frame.sample(frac=train_fraction, random_state=42)["row"].to_numpy()
    test_ref = frame.loc[~frame.index.isin(train_ref), "row"].to_numpy()
    for seed in (0, 3):
        split = tabular_split(data, train_fraction, 0.15, seed=seed, split_seed=42, split_draw="sample")
        assert sorted(split.test) == sorted(test_ref)
        assert sorted(split.train) == sorted(train_ref[flags[train_ref] == 0])


def test_split_draw_errors_name_the_fix():
    data = raw(200, anomaly_every=7)
    with pytest.raises(ConfigError, match="protocol.split_draw='pandas': choose train_test_split .* or sample"):
        tabular_split(data, 0.5, 0.15, seed=0, split_seed=42, split_draw="pandas")
    with pytest.raises(ConfigError, match="set both, e.g. protocol.split_seed=42 protocol.split_draw=sample"):
        tabular_split(data, 0.5, 0.15, seed=0, split_draw="sample")


def test_seed_drives_the_split():
    data = raw(500)
    a, b = tabular_split(data, 0.5, 0.2, seed=0), tabular_split(data, 0.5, 0.2, seed=0)
    c = tabular_split(data, 0.5, 0.2, seed=1)
    assert (a.test == b.test).all()
    assert not np.array_equal(np.sort(a.test), np.sort(c.test))


@pytest.mark.parametrize("key,value", [("train_fraction", 1.5), ("train_fraction", 0.0),
                                       ("contamination", 1.0), ("contamination", -0.1),
                                       ("contamination", None)])
def test_impossible_fractions_are_config_errors(key, value):
    params = {"train_fraction": 0.5, "contamination": 0.2, key: value}
    with pytest.raises(ConfigError, match=f"protocol.{key}"):
        tabular_split(raw(100), params["train_fraction"], params["contamination"], seed=0)


@pytest.mark.parametrize("overrides,says", [
    (["protocol.val_fraction=1.5"], "protocol.val_fraction must be a number in (0, 1), got 1.5"),
    (["protocol.train_fraction=0"], "protocol.train_fraction must be a number in (0, 1), got 0"),
    (["protocol.contamination=null"], "protocol.contamination must be a number in (0, 1), got None"),
    (["protocol.split_draw=sample"], "set both, e.g. protocol.split_seed=42 protocol.split_draw=sample"),
    (["protocol.split_seed=-1"], "protocol.split_seed=-1 must be null"),
    (["protocol.train_anomalies=maybe"], "protocol.train_anomalies='maybe': choose drop"),
    (["dataset=mnist", "protocol.contamination=1.2"], "protocol.contamination must be a number in (0, 1), got 1.2"),
    (["dataset=mnist", "protocol=alad_image", "protocol.val_fraction=1"], "protocol.val_fraction must be a number"),
    (["dataset=fashion_mnist", "protocol=cross_dataset", "protocol.anomaly_dataset=mnist",
      "protocol.anomaly_fraction=0"], "protocol.anomaly_fraction must be a number in (0, inf), got 0"),
])
def test_protocol_settings_are_checked_before_any_data_loads(overrides, says):
    """A share out of range or an unknown choice is found by the config check, which loads no data (the split
    functions check them again for their direct callers)."""
    from ganad_bench.config import check_run_config, compose_config, to_container

    config = to_container(compose_config(["model=iforest", *overrides]))
    with pytest.raises(ConfigError, match=re.escape(says)):
        check_run_config(config)


def test_split_without_test_anomalies_is_refused():
    with pytest.raises(ConfigError, match="train_fraction"):
        tabular_split(raw(20, anomaly_every=19), 0.95, 0.2, seed=0)


def test_unknown_protocol():
    with pytest.raises(ConfigError, match="unknown protocol"):
        make_split({"name": "nope"}, raw(10), 0)


def test_a_protocol_key_another_protocol_reads_is_an_error_here():
    """`protocol.split_seed` is the tabular protocol's: on a one-class run it would change nothing but the
    run's folder, so it stops the run with the protocol's own keys named."""
    from ganad_bench.config import check_run_config, compose_config, to_container

    config = to_container(compose_config(["dataset=mnist", "model=dcae"]))
    check_run_config(config)
    config["protocol"]["split_seed"] = 1
    with pytest.raises(ConfigError, match="protocol.split_seed: not a setting of the one_class protocol.*"
                                          "its settings: contamination, name, val_fraction$"):
        check_run_config(config)


def test_the_declared_top_level_keys_are_those_the_default_run_config_has():
    from ganad_bench.config import compose_config, declared_keys, to_container

    assert declared_keys() == set(to_container(compose_config([])))

"""Evaluation protocols (DESIGN.md, "Evaluation protocols"): original labels -> index sets and 0/1
anomaly flags. This module is the ONLY place where labels become anomaly flags.

Every protocol returns a `Split` whose train and validation sets hold normal samples only, unless a
config says otherwise explicitly; model selection never sees test labels.

Protocols: `tabular` (DAGMM / ALAD / RCGAN tables), and for the image datasets `one_class` (MEMGAN, RCGAN,
AMA Table 2, Deep SVDD), `alad_image` (ALAD Tables III, VI, VIII), `cross_dataset` (AMA Table 1) and
`leave_one_class_out` (GANomaly's, Skip-GANomaly's and Fence GAN's own image protocol: one class anomalous).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ganad_bench.config import SEED_RULE, is_seed
from ganad_bench.data.dataset import RawDataset
from ganad_bench.errors import ConfigError


@dataclasses.dataclass
class Split:
    """Indices into the dataset's rows, and the 0/1 anomaly flags of the test rows (1 = anomaly).

    `extra_test` holds test samples that are not rows of the dataset (the anomalies that `cross_dataset`
    draws from another dataset); they follow the indexed test rows, and `test_labels` covers both, so
    `test_features` is what a detector scores. `normal_class` is the normal class's name under the
    one-class image protocols ("all-but-<class>" under `leave_one_class_out`; None otherwise)."""

    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    contamination: float | None
    normal_class: str | None = None
    extra_test: np.ndarray | None = None
    anomaly_dataset: str | None = None

    def test_features(self, features: np.ndarray) -> np.ndarray:
        """The test samples in the order of `test_labels`."""
        rows = features[self.test]
        if self.extra_test is None:
            return rows
        return np.concatenate([rows, self.extra_test.astype(rows.dtype, copy=False)])

    def test_classes(self, raw: RawDataset) -> np.ndarray | None:
        """The original class of each test sample (its name: "3", "cat", "smurf."), None where some test samples
        are not rows of `raw` (`cross_dataset`'s anomalies)."""
        if self.extra_test is not None:
            return None
        labels = raw.labels[self.test]
        return np.asarray(raw.class_names)[labels.astype(np.int64)] if raw.class_names else labels.astype(str)

    def sizes(self) -> dict[str, int]:
        return {
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test_labels),
            "n_test_anomalies": int(self.test_labels.sum()),
        }


def anomaly_flags(raw: RawDataset) -> np.ndarray:
    """1 where the original label is one of the dataset's canonical anomaly labels."""
    return np.isin(raw.labels, list(raw.anomaly_labels)).astype(np.int64)


def check_fraction(name: str, value, low_open: float = 0.0, high_open: float = 1.0) -> float:
    if value is None or not isinstance(value, (int, float)) or not (low_open < float(value) < high_open):
        raise ConfigError(f"{name} must be a number in ({low_open:g}, {high_open:g}), got {value!r}: "
                          f"set it on the command line, e.g. {name}=0.5")
    return float(value)


# the protocol keys each protocol reads (make_split, metrics); any other protocol key is an error
# (`config.check_known_keys`) and never part of a run's identity (`results.store.identity`)
PROTOCOL_KEYS = {
    "tabular": ("train_fraction", "contamination", "val_fraction", "train_anomalies", "split_seed", "split_draw"),
    "one_class": ("contamination", "val_fraction"),
    "alad_image": ("train_fraction", "contamination", "val_fraction"),
    "cross_dataset": ("anomaly_dataset", "anomaly_source", "anomaly_fraction", "contamination", "val_fraction"),
    "leave_one_class_out": ("anomaly_class", "contamination", "val_fraction"),
}
TRAIN_ANOMALIES = ("drop", "keep")
# how a fixed `split_seed` draws its split, as the authors' code for each dataset did: scikit-learn's
# train_test_split (ALAD's data/arrhythmia.py) or pandas' DataFrame.sample(frac=train_fraction) (data/kdd.py)
SPLIT_DRAWS = ("train_test_split", "sample")
# tabular protocol keys added after runs had been made, and the value that every earlier run behaved as
# (the result store hashes them only when set to something else, so those runs keep their folders)
ADDED_TABULAR_DEFAULTS = {"train_anomalies": "drop", "split_seed": None, "split_draw": "train_test_split"}


def tabular_split(raw: RawDataset, train_fraction: float, contamination: float, seed: int,
                  val_fraction: float = 0.0, train_anomalies: str = ADDED_TABULAR_DEFAULTS["train_anomalies"],
                  split_seed: int | None = ADDED_TABULAR_DEFAULTS["split_seed"],
                  split_draw: str = ADDED_TABULAR_DEFAULTS["split_draw"]) -> Split:
    """The `tabular` protocol (DAGMM / ALAD / RCGAN).

    A seeded random permutation puts `round(train_fraction * n)` rows in the train split and the rest
    in the test split: each run seed draws its own split. `split_seed` fixes one split for every run seed
    instead, drawn exactly as the authors' code drew it (`random_state=42` in ALAD's, so its runs differ only
    in the networks' randomness): `split_draw="train_test_split"`, scikit-learn's `train_test_split(X, y,
    test_size=1 - train_fraction, random_state=split_seed)` (ALAD's Arrhythmia), or `"sample"`, the rows of
    pandas' `df.sample(frac=train_fraction, random_state=split_seed)` in the train split (ALAD's KDD99); the
    run seed still seeds the model. Anomalies are dropped from the train split
    (novelty detection, as ALAD's code does; `train_anomalies="keep"` keeps them: unsupervised training on
    contaminated rows);
    `val_fraction` of the normal train rows is held out for validation (early stopping of the deep models),
    never an anomaly. The test split keeps every row, whatever the training keeps; at test time the top
    `contamination` fraction of scores is flagged anomalous (`ganad_bench.metrics`).
    """
    check_train_anomalies(train_anomalies)
    train_fraction = check_fraction("protocol.train_fraction", train_fraction)
    contamination = check_fraction("protocol.contamination", contamination)
    if val_fraction != 0.0:
        val_fraction = check_fraction("protocol.val_fraction", val_fraction)
    flags = anomaly_flags(raw)
    train_rows, test_rows = split_rows(len(flags), train_fraction, seed, split_seed, split_draw)
    normal_train = train_rows[flags[train_rows] == 0]
    n_val = held_out_count(len(normal_train), val_fraction, f"normal training rows of {raw.name}")
    val, train = normal_train[:n_val], normal_train[n_val:]
    if train_anomalies == "keep":  # the same normal rows (and validation), plus the split's anomalies
        train = np.concatenate([train, train_rows[flags[train_rows] == 1]])
    test_labels = flags[test_rows]
    if len(train) == 0 or len(test_rows) == 0 or test_labels.min() == test_labels.max():
        raise ConfigError(
            f"protocol.train_fraction={train_fraction:g} leaves {len(train)} normal training rows and a test "
            f"split of {len(test_rows)} rows with {int(test_labels.sum())} anomalies on {raw.name}: "
            f"choose a train_fraction nearer 0.5"
        )
    return Split("tabular", np.sort(train), np.sort(val), test_rows, test_labels, contamination)


def _require_images(raw: RawDataset, protocol: str) -> None:
    if not raw.is_image or raw.official_split is None:
        raise ConfigError(f"protocol {protocol} applies to image datasets (mnist, fashion_mnist, cifar10, svhn), "
                          f"not {raw.name}: use protocol=tabular")


def held_out_count(n_rows: int, val_fraction: float, what: str) -> int:
    """How many of `n_rows` (`what`: "normal training rows of thyroid") `val_fraction` holds out for
    validation: round(val_fraction * n_rows). A fraction above 0 that holds out none of them (the run would
    train without the validation it asked for) or all of them (nothing left to train on) is a ConfigError
    that gives the range that works; no rows at all are left to the caller's own message."""
    if not val_fraction or n_rows == 0:
        return 0
    n_val = int(round(val_fraction * n_rows))
    if n_val == 0:
        raise ConfigError(f"protocol.val_fraction={val_fraction:g} holds out none of the {n_rows} {what} for "
                          f"validation: give at least 1/{n_rows} (about {1 / n_rows:.2g}), or 0 for no validation")
    if n_val >= n_rows:
        raise ConfigError(f"protocol.val_fraction={val_fraction:g} holds out all {n_rows} {what} for validation "
                          f"and leaves none to train on: give at most {n_rows - 1}/{n_rows}, e.g. 0.1")
    return n_val


def _hold_out(rows: np.ndarray, val_fraction: float, rng: np.random.Generator,
              what: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): a seeded `val_fraction` of `rows` (`what`, for held_out_count) held out for validation,
    both sorted."""
    n_val = held_out_count(len(rows), val_fraction, what)
    if not n_val:
        return np.sort(rows), rows[:0]
    rows = rng.permutation(rows)
    return np.sort(rows[n_val:]), np.sort(rows[:n_val])


def _check_nonempty(split: Split, raw: RawDataset, hint: str) -> Split:
    labels = split.test_labels
    if len(split.train) == 0 or len(labels) == 0 or labels.min() == labels.max():
        raise ConfigError(f"protocol {split.protocol} on {raw.name} leaves {len(split.train)} normal training "
                          f"images and {len(labels)} test images with {int(labels.sum())} anomalies: {hint}")
    return split


def one_class_split(raw: RawDataset, normal_class, seed: int, val_fraction: float = 0.0) -> Split:
    """The `one_class` protocol (MEMGAN Tables 1-2, RCGAN Table 2, AMA Table 2, after Deep SVDD).

    Train on the official-train images of the normal class only; test on the WHOLE official test split,
    where every other class is an anomaly (so about 90 % of the test images are anomalies on the
    10-class datasets). `val_fraction` of the normal training images may be held out (seeded) for the
    deep models' validation; it is 0 by default, as in the papers."""
    return _one_class_against_the_rest(raw, "one_class", normal_class, seed, val_fraction)


def alad_image_split(raw: RawDataset, normal_class, seed: int, train_fraction: float = 0.8,
                     val_fraction: float = 0.25) -> Split:
    """The `alad_image` protocol (ALAD Sec. V "Data setup": Tables III, VI, VIII).

    Pool the official train and test images, permute them with the run seed, take `train_fraction`
    (80 %) for training and the rest (20 %) for testing; `val_fraction` (25 %) of the training part
    becomes the validation set. Anomalies (every class but the normal one) are then dropped from
    training and validation; the test part keeps all its images."""
    _require_images(raw, "alad_image")
    train_fraction = check_fraction("protocol.train_fraction", train_fraction)
    if val_fraction:
        val_fraction = check_fraction("protocol.val_fraction", val_fraction)
    normal = raw.class_index(normal_class)
    order = np.random.default_rng(seed).permutation(len(raw.labels))
    n_train = int(round(train_fraction * len(order)))
    n_val = held_out_count(n_train, val_fraction, f"images of {raw.name}'s training part (both classes)")
    val_rows, train_rows, test = order[:n_val], order[n_val:n_train], order[n_train:]
    is_normal = raw.labels == normal
    split = Split("alad_image", np.sort(train_rows[is_normal[train_rows]]), np.sort(val_rows[is_normal[val_rows]]),
                  test, (~is_normal[test]).astype(np.int64), None, normal_class=raw.class_names[normal])
    return _check_nonempty(split, raw, "choose a protocol.train_fraction nearer 0.8")


def cross_dataset_split(raw: RawDataset, anomaly_raw: RawDataset, seed: int, anomaly_fraction: float = 0.2,
                        val_fraction: float = 0.0) -> Split:
    """The `cross_dataset` protocol (AMA Sec. 4, Table 1: e.g. Fashion-MNIST vs MNIST, CIFAR-10 vs SVHN).

    Every class of dataset A (`raw`) is normal: train on A's official training split, test on A's whole
    official test split plus anomalies drawn (seeded, without replacement) from the official TEST split of
    dataset B (`anomaly_raw`), as many as `anomaly_fraction` (20 %) of A's test images. B's images must
    have A's shape; they are returned as `Split.extra_test` and preprocessed exactly as A's."""
    _require_images(raw, "cross_dataset")
    if anomaly_raw is None:
        raise ConfigError("protocol cross_dataset needs protocol.anomaly_dataset: e.g. "
                          "protocol.anomaly_dataset=mnist for dataset=fashion_mnist")
    _require_images(anomaly_raw, "cross_dataset")
    if anomaly_raw.name == raw.name:
        raise ConfigError(f"protocol.anomaly_dataset={anomaly_raw.name} is the normal dataset itself: "
                          f"pick another dataset (for anomalies from the same dataset use protocol=one_class)")
    if anomaly_raw.features.shape[1:] != raw.features.shape[1:]:
        raise ConfigError(f"protocol.anomaly_dataset={anomaly_raw.name} has images of shape "
                          f"{tuple(anomaly_raw.features.shape[1:])}, {raw.name} has "
                          f"{tuple(raw.features.shape[1:])} (C, H, W): pick an anomaly dataset with the same "
                          f"shape, e.g. mnist with fashion_mnist, svhn with cifar10")
    anomaly_fraction = check_fraction("protocol.anomaly_fraction", anomaly_fraction, high_open=float("inf"))
    if val_fraction:
        val_fraction = check_fraction("protocol.val_fraction", val_fraction)
    rng = np.random.default_rng(seed)
    train, val = _hold_out(np.flatnonzero(raw.official_split == 0), val_fraction, rng,
                           f"official training images of {raw.name}")
    test = np.flatnonzero(raw.official_split == 1)
    pool = np.flatnonzero(anomaly_raw.official_split == 1)
    n_anomalies = int(round(anomaly_fraction * len(test)))
    if n_anomalies > len(pool):
        raise ConfigError(f"protocol.anomaly_fraction={anomaly_fraction:g} asks for {n_anomalies} anomalies but "
                          f"{anomaly_raw.name} has {len(pool)} test images: lower it")
    chosen = np.sort(rng.choice(pool, size=n_anomalies, replace=False))
    labels = np.concatenate([np.zeros(len(test), np.int64), np.ones(n_anomalies, np.int64)])
    split = Split("cross_dataset", train, val, test, labels, None, extra_test=anomaly_raw.features[chosen],
                  anomaly_dataset=anomaly_raw.name)
    return _check_nonempty(split, raw, "raise protocol.anomaly_fraction")


def leave_one_class_out_split(raw: RawDataset, anomaly_class, seed: int, val_fraction: float = 0.0) -> Split:
    """The `leave_one_class_out` protocol, one_class turned around: the protocol of GANomaly (Akcay et al.
    2018, Sec. 4.1: "one class being an anomaly, while the rest of the classes are considered as normal"),
    Skip-GANomaly and Fence GAN (its utils/data.py: `--ano_class`).

    Train on the official-train images of every class but `anomaly_class`; test on the whole official test
    split, where only `anomaly_class` is an anomaly (about 10 % of the test images on the 10-class datasets).
    The authors' code pools and re-splits the images (Fence GAN: 80 % of the normal images train, 15 % and
    75 % of the anomalies test); the official split keeps the test set of the other image protocols. The
    split's normal class reads "all-but-<class>"."""
    return _one_class_against_the_rest(raw, "leave_one_class_out", anomaly_class, seed, val_fraction)


# how `leave_one_class_out` names its normal classes in a row's normal_class: "all-but-1", "all-but-cat"
ALL_BUT = "all-but-"


def _one_class_against_the_rest(raw: RawDataset, protocol: str, chosen, seed: int, val_fraction: float) -> Split:
    """The official split with one class set against all the others: the normal class of `one_class`, the
    anomalous class of `leave_one_class_out` (its test flags are one_class's, every one flipped). Training
    takes the official-train images of the normal class(es), `val_fraction` of them held out (seeded); the
    test is the whole official test split."""
    _require_images(raw, protocol)
    if val_fraction:
        val_fraction = check_fraction("protocol.val_fraction", val_fraction)
    normal_is_chosen = protocol == "one_class"
    index = raw.class_index(chosen, "dataset.normal_class" if normal_is_chosen else "protocol.anomaly_class")
    is_chosen = raw.labels == index
    official_train = raw.official_split == 0
    train, val = _hold_out(np.flatnonzero(official_train & (is_chosen == normal_is_chosen)), val_fraction,
                           np.random.default_rng(seed), f"normal training images of {raw.name}")
    test = np.flatnonzero(~official_train)
    name = raw.class_names[index]
    split = Split(protocol, train, val, test, (is_chosen[test] != normal_is_chosen).astype(np.int64), None,
                  normal_class=name if normal_is_chosen else f"{ALL_BUT}{name}")
    return _check_nonempty(split, raw, "the dataset files hold no image of that class in one of the splits")


PROTOCOLS = tuple(PROTOCOL_KEYS)


def check_train_anomalies(train_anomalies) -> None:
    if train_anomalies not in TRAIN_ANOMALIES:
        raise ConfigError(f"protocol.train_anomalies={train_anomalies!r}: choose drop (novelty detection, the "
                          f"papers' tables) or keep (training on contaminated rows)")


def check_split_draw(split_seed, split_draw) -> None:
    """`split_draw` names how the fixed split of `split_seed` is drawn: both set, or neither."""
    if split_draw not in SPLIT_DRAWS:
        raise ConfigError(f"protocol.split_draw={split_draw!r}: choose train_test_split (scikit-learn's, ALAD's "
                          f"Arrhythmia code) or sample (pandas' DataFrame.sample, ALAD's KDD99 code)")
    if split_seed is None and split_draw != ADDED_TABULAR_DEFAULTS["split_draw"]:
        raise ConfigError("protocol.split_draw draws the fixed split of protocol.split_seed: set both, "
                          "e.g. protocol.split_seed=42 protocol.split_draw=sample")
    if split_seed is not None and not is_seed(split_seed):
        raise ConfigError(f"protocol.split_seed={split_seed!r} must be null (each run seed draws its split) "
                          f"or {SEED_RULE}, e.g. protocol.split_seed=42")


def split_rows(n: int, train_fraction: float, seed: int, split_seed: int | None,
               split_draw: str) -> tuple[np.ndarray, np.ndarray]:
    """The train and test rows of `tabular_split` (its docstring): the run seed's own permutation, or the
    authors' fixed split of `split_seed` drawn the `split_draw` way."""
    check_split_draw(split_seed, split_draw)
    if split_seed is None:
        order = np.random.default_rng(seed).permutation(n)
        n_train = int(round(train_fraction * n))
        return order[:n_train], order[n_train:]
    # both draw a legacy RandomState permutation of the rows
    order = np.random.RandomState(split_seed).permutation(n)
    if split_draw == "sample":  # RandomState.choice(n, round(frac * n), replace=False): the first rows train
        n_train = round(train_fraction * n)
        return order[:n_train], order[n_train:]
    # sklearn's ShuffleSplit: the first ceil(test_size * n) rows test
    n_test = int(np.ceil(round((1.0 - train_fraction) * n, 9)))
    return order[n_test:], order[:n_test]


def make_split(protocol_cfg, raw: RawDataset, seed: int, normal_class=None,
               anomaly_raw: RawDataset | None = None) -> Split:
    """Dispatch on `protocol.name`. `normal_class` is `dataset.normal_class` (an index or a class name;
    used by one_class and alad_image; `leave_one_class_out` reads `protocol.anomaly_class`); `anomaly_raw` is
    dataset B of `cross_dataset` (loaded by the caller from `protocol.anomaly_dataset`: this module does no
    I/O)."""
    name = protocol_cfg.get("name")
    val_fraction = protocol_val_fraction(protocol_cfg)
    if name == "tabular":
        if raw.official_split is not None or raw.features.ndim != 2:
            raise ConfigError(f"protocol tabular applies to tabular datasets, not {raw.name}: "
                              f"use protocol=one_class or protocol=alad_image")
        return tabular_split(raw, protocol_cfg.get("train_fraction"), protocol_cfg.get("contamination"), seed,
                             val_fraction, **{key: protocol_cfg.get(key, default)
                                              for key, default in ADDED_TABULAR_DEFAULTS.items()})
    if name == "one_class":
        split = one_class_split(raw, normal_class, seed, val_fraction)
    elif name == "alad_image":
        split = alad_image_split(raw, normal_class, seed, protocol_cfg.get("train_fraction", 0.8), val_fraction)
    elif name == "cross_dataset":
        split = cross_dataset_split(raw, anomaly_raw, seed, protocol_cfg.get("anomaly_fraction", 0.2), val_fraction)
    elif name == "leave_one_class_out":
        split = leave_one_class_out_split(raw, protocol_cfg.get("anomaly_class"), seed, val_fraction)
    else:
        raise ConfigError(f"unknown protocol '{name}': choose one of {', '.join(PROTOCOLS)}")
    # the image protocols flag nothing unless asked: with a contamination set, the top share of the test scores
    # is flagged as on the tabular protocol (precision / recall / F1 beside AUROC and AUPRC; OC-SVM's nu follows)
    if (contamination := protocol_cfg.get("contamination")) is not None:
        split = dataclasses.replace(split, contamination=check_fraction("protocol.contamination", contamination))
    return split


def protocol_val_fraction(protocol_cfg) -> float:
    """The share of the normal training rows held out for validation: `alad_image` holds out 25 % of its
    training part by default, the others nothing."""
    default = 0.25 if protocol_cfg.get("name") == "alad_image" else 0.0
    return protocol_cfg.get("val_fraction", default) or 0.0


def check_protocol_settings(protocol_cfg) -> None:
    """The protocol's settings that need no data, checked before any is loaded (`config.check_run_config`):
    every share in its range and the tabular protocol's choices. What depends on the data (a share that holds
    out none of the rows, a split left without anomalies) is the split's own check, once the rows are known."""
    name = protocol_cfg.get("name")
    if name == "tabular" or protocol_cfg.get("contamination") is not None:
        check_fraction("protocol.contamination", protocol_cfg.get("contamination"))
    if val_fraction := protocol_val_fraction(protocol_cfg):
        check_fraction("protocol.val_fraction", val_fraction)
    for key, high_open in (("train_fraction", 1.0), ("anomaly_fraction", float("inf"))):
        if key in PROTOCOL_KEYS[name] and key in protocol_cfg:  # where it is left out, the split's default holds
            check_fraction(f"protocol.{key}", protocol_cfg[key], high_open=high_open)
    if name == "tabular":
        check_train_anomalies(protocol_cfg.get("train_anomalies", ADDED_TABULAR_DEFAULTS["train_anomalies"]))
        check_split_draw(protocol_cfg.get("split_seed", ADDED_TABULAR_DEFAULTS["split_seed"]),
                         protocol_cfg.get("split_draw", ADDED_TABULAR_DEFAULTS["split_draw"]))

"""Image datasets and protocols: loaders on tiny files written here in the exact canonical formats (gzip IDX,
the CIFAR-10 python tarball, SVHN .mat), the checksum and cache path, the image protocols' invariants
(one_class, alad_image, cross_dataset), pixel scaling, device tensors, and end-to-end runs.

The fixtures are self-contained (no conftest): the tiny files' checksums replace the canonical ones in a
monkeypatched copy of the registry, so the real verification path runs on them while the production
constants stay untouched."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ganad_bench.data import cache, registry
from ganad_bench.data import image_sources as img
from ganad_bench.data.dataset import RawDataset
from ganad_bench.data.files import DataSettings, sha256_of
from ganad_bench.data.preprocessing import PixelScaler, make_scaler
from ganad_bench.data.protocols import (
    alad_image_split,
    cross_dataset_split,
    leave_one_class_out_split,
    make_split,
    one_class_split,
)
from ganad_bench.data.registry import load_raw
from ganad_bench.data.tensors import RandpermBatches, in_chunks, to_device
from ganad_bench.errors import ChecksumMismatch, ConfigError, DataError

SHARED_DATA = Path(os.environ.get("GANAD_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "svhn")
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------------------------------- tiny canonical files
def class_images(labels: np.ndarray, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """uint8 images whose class shows: a fixed random template per class plus a little noise."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(10, *shape))
    noise = rng.integers(-20, 21, size=(len(labels), *shape))
    return np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int = 60, n_test: int = 30, seed: int = 0) -> dict:
    """The 4 gzip IDX files of an MNIST-format dataset (28 x 28, classes 0..9 in turn)."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {"train": np.arange(n_train) % 10, "t10k": np.arange(n_test) % 10}
    images = {part: class_images(y, (28, 28), seed + i) for i, (part, y) in enumerate(labels.items())}
    for part in ("train", "t10k"):
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images[part], 0x803)))
        (folder / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[part], 0x801)))
    return {"images": images, "labels": labels}


def write_cifar(folder: Path, per_batch: int = 4, n_test: int = 10, seed: int = 0) -> dict:
    """cifar-10-python.tar.gz: pickled dicts with bytes keys, rows of 3072 uint8 in CHW order."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(5 * per_batch + n_test) % 10
    images = class_images(labels, (3, 32, 32), seed)
    rows = images.reshape(len(images), 3072)
    batches = {f"data_batch_{i + 1}": slice(i * per_batch, (i + 1) * per_batch) for i in range(5)}
    batches["test_batch"] = slice(5 * per_batch, None)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        members = {name: {b"data": rows[part], b"labels": labels[part].tolist(), b"batch_label": name.encode()}
                   for name, part in batches.items()}
        members["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
        for name, payload in members.items():
            blob = pickle.dumps(payload, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return {"images": images, "labels": labels, "path": path}


def write_svhn(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """train_32x32.mat / test_32x32.mat: X is 32 x 32 x 3 x N uint8, y is N x 1 in 1..10 (10 = digit 0)."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n, s in (("train_32x32.mat", n_train, seed), ("test_32x32.mat", n_test, seed + 1)):
        digits = np.arange(n) % 10
        nchw = class_images(digits, (3, 32, 32), s)
        file_labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        savemat(folder / name, {"X": nchw.transpose(2, 3, 1, 0), "y": file_labels})
        out[name] = (nchw, digits)
    return out


def trust_files(monkeypatch, data: Path) -> None:
    """Replace the canonical checksums of every registered file that exists under `data` by the tiny file's
    own (a monkeypatched copy of the registry: production constants are untouched and still verified)."""
    patched = dict(registry.SOURCES)
    for name in registry.SOURCES:
        patched[name] = {}
        for source, spec in registry.SOURCES[name].items():
            files = tuple(dataclasses.replace(f, sha256=sha256_of(data / f.subdir / f.name))
                          if (data / f.subdir / f.name).is_file() else f for f in spec.files)
            patched[name][source] = dataclasses.replace(spec, files=files)
    monkeypatch.setattr(registry, "SOURCES", patched)


@pytest.fixture
def image_data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    written = {
        "mnist": write_idx_set(data / "mnist", seed=0),
        "fashion_mnist": write_idx_set(data / "fashion_mnist", seed=100),
        "cifar10": write_cifar(data / "cifar10"),
        "svhn": write_svhn(data / "svhn"),
    }
    trust_files(monkeypatch, data)
    return data, written


@pytest.fixture
def settings(image_data, tmp_path):
    return DataSettings(data_dir=image_data[0], cache_dir=tmp_path / "cache", download=False)


# ------------------------------------------------------------------------------------------------- loaders
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader(settings, image_data, name):
    raw = load_raw(name, None, settings)
    tiny = image_data[1][name]
    assert raw.features.shape == (90, 1, 28, 28) and raw.features.dtype == np.uint8
    np.testing.assert_array_equal(raw.features[:60, 0], tiny["images"]["train"])
    np.testing.assert_array_equal(raw.features[60:, 0], tiny["images"]["t10k"])
    np.testing.assert_array_equal(raw.labels, np.r_[tiny["labels"]["train"], tiny["labels"]["t10k"]])
    assert raw.official_split.tolist() == [0] * 60 + [1] * 30  # train rows first
    assert len(raw.class_names) == 10 and raw.is_image
    assert set(raw.files) == set(img.IDX_NAMES)
    if name == "fashion_mnist":
        assert raw.class_names[1] == "Trouser"


def test_cifar_loader_reads_pickled_batches_in_chw_order(settings, image_data):
    raw = load_raw("cifar10", None, settings)
    tiny = image_data[1]["cifar10"]
    assert raw.features.shape == (30, 3, 32, 32) and raw.features.dtype == np.uint8
    np.testing.assert_array_equal(raw.features, tiny["images"])  # channel-major rows -> (C, H, W)
    np.testing.assert_array_equal(raw.labels, tiny["labels"])
    assert raw.official_split.tolist() == [0] * 20 + [1] * 10
    assert raw.class_names == CIFAR_NAMES  # from batches.meta


def test_svhn_loader_maps_10_to_digit_0_and_transposes(settings, image_data):
    raw = load_raw("svhn", None, settings)
    (train_x, train_y), (test_x, test_y) = image_data[1]["svhn"].values()
    assert raw.features.shape == (30, 3, 32, 32)
    np.testing.assert_array_equal(raw.features, np.concatenate([train_x, test_x]))
    np.testing.assert_array_equal(raw.labels, np.r_[train_y, test_y])
    assert raw.labels.min() == 0 and raw.labels.max() == 9 and (raw.labels == 0).sum() == 3
    assert raw.official_split.tolist() == [0] * 20 + [1] * 10


def test_checksums_are_verified_by_the_production_registry(image_data, tmp_path, monkeypatch):
    monkeypatch.undo()  # the real SHA-256 / MD5 constants
    data = image_data[0]
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(ChecksumMismatch, match=r"sha256 .* replace it with the official train-images"):
        load_raw("mnist", None, settings)
    with pytest.raises(ChecksumMismatch, match=r"has md5 .*expected 8d4fb7e6c68d.*fashion-mnist"):
        load_raw("fashion_mnist", None, settings)
    with pytest.raises(ChecksumMismatch, match=r"md5 .*expected c58f30108f71.* from https://www.cs.toronto"):
        load_raw("cifar10", None, settings)


def test_missing_files_name_where_to_put_them(tmp_path):
    settings = DataSettings(data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError, match=r"train_32x32.mat not found: put it at .*svhn/train_32x32.mat"):
        load_raw("svhn", None, settings)


def test_parsed_images_are_cached_under_a_checksum_key(settings, image_data, monkeypatch):
    first = load_raw("mnist", None, settings)
    cached = list((settings.parsed_dir).glob("mnist-idx-*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(cache, "_memo", {})  # a new process: only the .npz is left

    def no_parse(*_):
        raise AssertionError("parsed again despite the cache")

    spec = registry.SOURCES["mnist"]["idx"]
    monkeypatch.setitem(registry.SOURCES, "mnist", {"idx": dataclasses.replace(spec, parse=no_parse)})
    again = load_raw("mnist", None, settings)
    np.testing.assert_array_equal(again.features, first.features)
    assert again.class_names == first.class_names and again.official_split.dtype == np.int8
    # another checksum of any file (here the last) is another cache entry
    other = dataclasses.replace(spec, files=(*spec.files[:3], dataclasses.replace(spec.files[3], sha256="0" * 64)))
    assert registry.cache_name("mnist", "idx", other) != cached[0].name


# ------------------------------------------------------------------------------ damaged files -> DataError
def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and "replace" in message
    return message


@pytest.mark.parametrize("damage,expected", [
    (lambda blob: blob[: len(blob) // 2], "not a readable gzip file"),  # truncated download
    (lambda blob: b"garbage" + blob[7:], "not a readable gzip file"),  # corrupted header
    (lambda blob: gzip.compress(gzip.decompress(blob)[:-5]), "header announces"),  # short payload
    (lambda blob: gzip.compress(b"\x00\x00\x08\x01" + gzip.decompress(blob)[4:]), "magic 0x801, expected 0x803"),
])
def test_damaged_idx_files_are_one_line_data_errors(image_data, tmp_path, monkeypatch, damage, expected):
    data = image_data[0]
    path = data / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    trust_files(monkeypatch, data)  # the parser, not the checksum, must catch it
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError) as err:
        load_raw("mnist", None, settings)
    assert expected in one_line(err) and "train-images-idx3-ubyte.gz" in str(err.value)


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_cifar_archive_is_a_one_line_data_error(image_data, tmp_path, monkeypatch, cut):
    data = image_data[0]
    path = data / "cifar10" / "cifar-10-python.tar.gz"
    blob = path.read_bytes()
    path.write_bytes(blob[: int(cut * len(blob))])
    trust_files(monkeypatch, data)
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError) as err:
        load_raw("cifar10", None, settings)
    assert "CIFAR-10 python tarball" in one_line(err)


def test_damaged_svhn_file_is_a_one_line_data_error(image_data, tmp_path, monkeypatch):
    data = image_data[0]
    path = data / "svhn" / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    trust_files(monkeypatch, data)
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError) as err:
        load_raw("svhn", None, settings)
    assert "test_32x32.mat" in one_line(err)


# ------------------------------------------------------------------------------------------ normal class
def toy_images(n_train_per_class: int = 20, n_test_per_class: int = 10, shape=(1, 4, 4), name: str = "toy"):
    labels = np.r_[np.tile(np.arange(10), n_train_per_class), np.tile(np.arange(10), n_test_per_class)]
    split = np.r_[np.zeros(10 * n_train_per_class, np.int8), np.ones(10 * n_test_per_class, np.int8)]
    features = class_images(labels, shape, seed=1)
    return RawDataset(name, "test", features, labels, official_split=split, class_names=list(CIFAR_NAMES))


@pytest.mark.parametrize("value", [3, "3", "cat", "Cat", np.int64(3)])
def test_normal_class_by_index_or_name(value):
    assert toy_images().class_index(value) == 3


@pytest.mark.parametrize("value", [10, -1, "dragon", True, None])
def test_unknown_normal_class_lists_the_choices(value):
    with pytest.raises(ConfigError) as err:
        toy_images().class_index(value)
    message = str(err.value)
    assert "\n" not in message and "dataset.normal_class" in message and "3 (cat)" in message


# ---------------------------------------------------------------------------------------------- protocols
def test_one_class_protocol():
    raw = toy_images()
    split = one_class_split(raw, "cat", seed=0)
    assert split.protocol == "one_class" and split.normal_class == "cat" and split.contamination is None
    assert (raw.official_split[split.train] == 0).all() and (raw.labels[split.train] == 3).all()
    assert len(split.train) == 20 and len(split.val) == 0  # every official-train cat, nothing else
    np.testing.assert_array_equal(split.test, np.flatnonzero(raw.official_split == 1))  # the whole test split
    np.testing.assert_array_equal(split.test_labels, (raw.labels[split.test] != 3).astype(int))
    assert split.sizes() == {"n_train": 20, "n_val": 0, "n_test": 100, "n_test_anomalies": 90}
    held = one_class_split(raw, 3, seed=0, val_fraction=0.25)
    assert len(held.val) == 5 and len(held.train) == 15 and not set(held.val) & set(held.train)
    assert (raw.labels[held.val] == 3).all()


@pytest.mark.parametrize("val_fraction,says", [(0.01, "holds out none of the 20 normal training images of toy for "
                                                          "validation: give at least 1/20"),
                                                (0.99, "holds out all 20 normal training images of toy for "
                                                       "validation and leaves none to train on: give at most 19/20")])
def test_a_validation_fraction_that_holds_out_none_or_all_of_the_images_is_refused(val_fraction, says):
    """Before, 0.01 of 20 images silently held out none (a run asking for validation trained without it), and
    0.99 emptied training with a message that blamed the dataset files."""
    with pytest.raises(ConfigError, match=f"protocol.val_fraction={val_fraction:g} {says}"):
        one_class_split(toy_images(), "cat", seed=0, val_fraction=val_fraction)
    assert len(one_class_split(toy_images(), "cat", seed=0, val_fraction=0.05).val) == 1  # 1/20 holds out one


def test_leave_one_class_out_protocol_is_one_class_turned_around():
    raw = toy_images()
    split = leave_one_class_out_split(raw, "cat", seed=0)
    assert split.protocol == "leave_one_class_out" and split.normal_class == "all-but-cat"
    assert split.contamination is None
    # every official-train image but the cats, nothing from the test split
    np.testing.assert_array_equal(split.train, np.flatnonzero((raw.official_split == 0) & (raw.labels != 3)))
    np.testing.assert_array_equal(split.test, np.flatnonzero(raw.official_split == 1))  # the whole test split
    np.testing.assert_array_equal(split.test_labels, (raw.labels[split.test] == 3).astype(int))
    assert split.sizes() == {"n_train": 180, "n_val": 0, "n_test": 100, "n_test_anomalies": 10}
    flipped = one_class_split(raw, "cat", seed=0)  # the same test images, every flag flipped
    np.testing.assert_array_equal(split.test_labels, 1 - flipped.test_labels)
    held = leave_one_class_out_split(raw, 3, seed=0, val_fraction=0.25)
    assert len(held.val) == 45 and len(held.train) == 135 and not set(held.val) & set(held.train)
    assert (raw.labels[held.val] != 3).all() and (raw.official_split[held.val] == 0).all()
    assert make_split({"name": "leave_one_class_out", "anomaly_class": 3}, raw, 0).normal_class == "all-but-cat"
    with pytest.raises(ConfigError, match="protocol.anomaly_class is not set and this protocol needs a class"):
        make_split({"name": "leave_one_class_out"}, raw, 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_alad_image_protocol_sizes_and_no_anomalies_in_training(seed):
    raw = toy_images(n_train_per_class=70, n_test_per_class=30)  # 1000 images
    split = alad_image_split(raw, 5, seed=seed)
    n_train_part = round(0.8 * 1000)
    assert len(split.test) == 1000 - n_train_part  # 20 % test, all classes kept
    # 25 % of the training part is validation; anomalies are then dropped from both
    order = np.random.default_rng(seed).permutation(1000)
    val_part, train_part = order[:round(0.25 * n_train_part)], order[round(0.25 * n_train_part):n_train_part]
    np.testing.assert_array_equal(split.val, np.sort(val_part[raw.labels[val_part] == 5]))
    np.testing.assert_array_equal(split.train, np.sort(train_part[raw.labels[train_part] == 5]))
    assert (raw.labels[split.train] == 5).all() and (raw.labels[split.val] == 5).all()
    assert len(set(split.train) | set(split.val) | set(split.test)) == len(split.train) + len(split.val) + 200
    np.testing.assert_array_equal(split.test_labels, (raw.labels[split.test] != 5).astype(int))
    # official train AND test rows are pooled
    assert set(raw.official_split[split.test]) == {0, 1}


def test_alad_image_depends_on_the_seed_only():
    raw = toy_images()
    a, b, c = (alad_image_split(raw, 0, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(np.sort(a.test), np.sort(c.test))


def test_cross_dataset_protocol():
    normal, other = toy_images(name="a"), toy_images(n_test_per_class=40, name="b")
    split = cross_dataset_split(normal, other, seed=0)
    n_normal_test = int((normal.official_split == 1).sum())
    n_anomalies = round(0.2 * n_normal_test)
    assert split.normal_class is None and split.anomaly_dataset == "b"
    np.testing.assert_array_equal(split.train, np.flatnonzero(normal.official_split == 0))  # all classes
    np.testing.assert_array_equal(split.test, np.flatnonzero(normal.official_split == 1))
    assert split.test_labels.tolist() == [0] * n_normal_test + [1] * n_anomalies
    assert split.extra_test.shape == (n_anomalies, 1, 4, 4)
    # the anomalies are distinct test images of dataset B
    b_test = other.features[other.official_split == 1].reshape(-1, 16)
    drawn = split.extra_test.reshape(-1, 16)
    matches = (drawn[:, None, :] == b_test[None, :, :]).all(axis=2)
    assert matches.any(axis=1).all()
    features = split.test_features(normal.features)
    assert len(features) == len(split.test_labels) and (features[n_normal_test:] == split.extra_test).all()
    assert split.sizes()["n_test"] == n_normal_test + n_anomalies
    more = cross_dataset_split(normal, other, seed=0, anomaly_fraction=0.5)
    assert more.test_labels.sum() == round(0.5 * n_normal_test)


def test_cross_dataset_refuses_other_shapes_and_itself():
    gray, colour = toy_images(shape=(1, 4, 4), name="gray"), toy_images(shape=(3, 4, 4), name="colour")
    with pytest.raises(ConfigError, match=r"shape \(3, 4, 4\), gray has \(1, 4, 4\)"):
        cross_dataset_split(gray, colour, seed=0)
    with pytest.raises(ConfigError, match="the normal dataset itself"):
        cross_dataset_split(gray, gray, seed=0)
    with pytest.raises(ConfigError, match="anomaly_fraction"):
        cross_dataset_split(gray, toy_images(n_test_per_class=1, name="small"), seed=0, anomaly_fraction=0.9)


def test_image_protocols_refuse_tabular_data_and_vice_versa():
    tabular = RawDataset("thyroid", "odds", np.zeros((10, 3), np.float32), np.zeros(10))
    for name in ("one_class", "alad_image", "leave_one_class_out"):
        with pytest.raises(ConfigError, match="use protocol=tabular"):
            make_split({"name": name, "anomaly_class": 0}, tabular, 0, normal_class=0)
    with pytest.raises(ConfigError, match="protocol tabular applies to tabular datasets"):
        make_split({"name": "tabular", "train_fraction": 0.5, "contamination": 0.1}, toy_images(), 0)


def test_make_split_dispatches_the_image_protocols():
    raw = toy_images()
    assert make_split({"name": "one_class"}, raw, 0, normal_class="cat").normal_class == "cat"
    alad = make_split({"name": "alad_image"}, raw, 0, normal_class=1)
    assert len(alad.test) == 60 and alad.protocol == "alad_image"
    with pytest.raises(ConfigError, match="needs protocol.anomaly_dataset"):
        make_split({"name": "cross_dataset"}, raw, 0)


# ---------------------------------------------------------------------------------------- preprocessing
def test_pixel_scaler_is_a_fixed_map_to_the_configured_range():
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_allclose(PixelScaler().fit(pixels).transform(pixels), [[-1.0, -0.6, 1.0]], atol=1e-6)
    np.testing.assert_allclose(PixelScaler([0, 1]).transform(pixels), [[0.0, 0.2, 1.0]], atol=1e-6)
    # nothing is fitted: the map of test images does not depend on the training images
    a = PixelScaler().fit(np.zeros((2, 3), np.uint8)).transform(pixels)
    b = PixelScaler().fit(np.full((2, 3), 255, np.uint8)).transform(pixels)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


@pytest.mark.parametrize("cfg,match", [({"scaler": "pixels", "pixel_range": [1, -1]}, "pixel_range"),
                                       ({"scaler": "pixels", "pixel_range": [0]}, "pixel_range"),
                                       ({"scaler": "nope"}, "choose one of none, minmax, standard, pixels")])
def test_bad_scaler_configs(cfg, match):
    with pytest.raises(ConfigError, match=match):
        make_scaler(cfg)


def test_pixel_scaler_refuses_non_images():
    with pytest.raises(ConfigError, match="expects uint8 images"):
        PixelScaler().fit(np.zeros((2, 3), np.float32))


# --------------------------------------------------------------------------------- classic detectors
@pytest.mark.parametrize("name,params", [("iforest", {}), ("iforest", {"contrast_norm": "l1", "pca": 0.95}),
                                         ("ocsvm", {}), ("kde", {"pca": 0.95}), ("kde", {"pca": 5})])
def test_classic_detectors_on_images(name, params):
    from sklearn.metrics import roc_auc_score

    from ganad_bench import create_detector

    raw = toy_images(n_train_per_class=30, shape=(1, 8, 8))
    split = one_class_split(raw, 2, seed=0)
    scaler = PixelScaler().fit(raw.features[split.train])
    x_train, x_test = scaler.transform(raw.features[split.train]), scaler.transform(raw.features[split.test])
    detector = create_detector(name, seed=0, **params).fit(x_train)
    scores = detector.score_samples(x_test)
    assert scores.shape == (len(x_test),) and roc_auc_score(split.test_labels, scores) > 0.9
    order = np.random.default_rng(0).permutation(len(x_test))
    np.testing.assert_allclose(detector.score_samples(x_test[order]), scores[order], rtol=1e-9, atol=1e-9)


def test_contrast_normalisation_ignores_the_pixel_range():
    from ganad_bench.models.kit.input_map import InputMap

    x = class_images(np.arange(20) % 10, (16,), seed=3).astype(np.float64)
    a = InputMap("l1").fit(x)(x)
    b = InputMap("l1").fit(x / 127.5 - 1)(x / 127.5 - 1)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0)  # min-max of the training rows
    with pytest.raises(ConfigError, match="contrast_norm"):
        InputMap("l3")
    with pytest.raises(ConfigError, match="model.params.pca"):
        InputMap(pca=1.5)


# ------------------------------------------------------------------------------------------ device tensors
def test_to_device_and_chunks():
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    tensor = to_device(x, "cpu")
    assert tensor.dtype == torch.float32 and tensor.is_contiguous() and tensor.shape == (6, 2)
    assert to_device(np.zeros(3, np.uint8), "cpu", dtype=None).dtype == torch.uint8
    chunks = list(in_chunks(tensor, 4))
    assert [len(c) for c in chunks] == [4, 2] and torch.equal(torch.cat(chunks), tensor)


def test_randperm_batches_cover_every_row_at_most_once_per_epoch():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    batches = RandpermBatches(x, batch_size=4, seed=0)
    assert len(batches) == 2  # the last incomplete batch is dropped (equal batches for BatchNorm)
    epoch = list(batches)
    assert [len(x_d) for x_d, _ in epoch] == [4, 4]
    assert all(x_g is x_d for x_d, x_g in epoch)  # one batch for both updates unless reshuffled
    rows = torch.cat([x_d for x_d, _ in epoch])[:, 0]
    assert len(set(rows.tolist())) == 8  # no row twice in one epoch
    second = torch.cat([x_d for x_d, _ in batches])[:, 0]
    assert not torch.equal(rows, second)  # a new permutation each epoch
    again = torch.cat([x_d for x_d, _ in RandpermBatches(x, batch_size=4, seed=0)])[:, 0]
    assert torch.equal(rows, again)  # reproducible from the seed
    with pytest.raises(ConfigError, match="batch size"):
        RandpermBatches(x, batch_size=0)


# ------------------------------------------------------------------------------------------- end to end
def compose(tmp_path, data_dir, *overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    base = [f"paths.data_dir={data_dir}", f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.output_dir={tmp_path / 'outputs'}", f"paths.results_dir={tmp_path / 'outputs' / 'results'}",
            "paths.download=false"]
    if not any(o.startswith("model=") for o in overrides):
        base.append("model=iforest")  # a classic model: these tests are about the data, not the default GAN
    with initialize_config_module(config_module="ganad_bench.conf", version_base=None):
        return hydra_compose("config", overrides=[*base, *overrides])


def test_cross_dataset_run_end_to_end(image_data, tmp_path):
    from ganad_bench.run import run

    cfg = compose(tmp_path, image_data[0], "model=iforest", "dataset=fashion_mnist", "protocol=cross_dataset",
                  "protocol.anomaly_dataset=mnist")
    row = run(cfg)
    assert row["status"] == "ok" and row["protocol"] == "cross_dataset" and row["normal_class"] is None
    assert row["sizes"] == {"n_train": 60, "n_val": 0, "n_test": 36, "n_test_anomalies": 6}  # 20 % of 30
    assert row["anomaly_dataset"] == "mnist" and set(row["anomaly_data_files"]) == set(img.IDX_NAMES)
    assert row["contamination"] is None and set(row["metrics"]) == {"auroc", "auprc"}
    assert row["config"]["protocol"]["anomaly_dataset"] == "mnist"


def test_cross_dataset_without_anomaly_dataset_is_a_config_error(image_data, tmp_path):
    from ganad_bench.run import run

    with pytest.raises(ConfigError, match="anomaly_dataset"):
        run(compose(tmp_path, image_data[0], "dataset=fashion_mnist", "protocol=cross_dataset"))
    with pytest.raises(ConfigError, match=r"shape \(3, 32, 32\), fashion_mnist has \(1, 28, 28\)"):
        run(compose(tmp_path, image_data[0], "dataset=fashion_mnist", "protocol=cross_dataset",
                    "protocol.anomaly_dataset=svhn"))


@pytest.mark.parametrize("overrides,normal_class,sizes", [
    (["dataset=cifar10", "dataset.normal_class=cat"], "cat", {"n_train": 2, "n_val": 0, "n_test": 10,
                                                             "n_test_anomalies": 9}),
    (["dataset=svhn", "dataset.normal_class=0", "model=ocsvm"], "0", {"n_train": 2, "n_val": 0, "n_test": 10,
                                                                       "n_test_anomalies": 9}),
    (["dataset=mnist", "protocol=alad_image", "dataset.normal_class=4", "model=kde"], "4", None),
])
def test_one_class_runs_end_to_end(image_data, tmp_path, overrides, normal_class, sizes):
    from ganad_bench.run import run

    row = run(compose(tmp_path, image_data[0], *overrides))
    assert row["status"] == "ok", row.get("error")
    assert row["normal_class"] == normal_class and row["contamination"] is None
    assert row["config"]["dataset"]["scaler"] == "pixels"
    if sizes:
        assert row["protocol"] == "one_class" and row["sizes"] == sizes
    else:
        assert row["protocol"] == "alad_image" and row["sizes"]["n_test"] == 90 - round(0.8 * 90)
        assert row["config"]["model"]["params"]["pca"] == 0.95  # conf/dataset_model/mnist_kde.yaml


def test_leave_one_class_out_runs_end_to_end(image_data, tmp_path):
    from ganad_bench.run import run

    row = run(compose(tmp_path, image_data[0], "dataset=mnist", "model=kde", "protocol=leave_one_class_out",
                      "protocol.anomaly_class=1"))
    assert row["status"] == "ok", row.get("error")
    assert row["protocol"] == "leave_one_class_out" and row["normal_class"] == "all-but-1"
    assert row["config"]["dataset"]["normal_class"] is None and row["config"]["protocol"]["anomaly_class"] == 1
    labels = image_data[1]["mnist"]["labels"]  # train on the other digits, test on all: the 1s are anomalies
    assert row["sizes"] == {"n_train": int((labels["train"] != 1).sum()), "n_val": 0, "n_test": len(labels["t10k"]),
                            "n_test_anomalies": int((labels["t10k"] == 1).sum())}
    assert list((tmp_path / "outputs").rglob("anomaly-class1/seed0-*/result.json"))
    assert set(row["metrics"]) == {"auroc", "auprc"}  # one anomalous class: no breakdown by class


def test_one_class_rows_give_the_auroc_against_each_anomalous_class(image_data, tmp_path, capsys):
    """The row's `auroc_vs_<digit>` is scikit-learn's on the normal test digits and that digit's alone, from
    the run's own scores; `ganad-bench-table --by-anomaly-class` shows them, one column a digit."""
    from ganad_bench.cli import table_main
    from ganad_bench.run import run

    row = run(compose(tmp_path, image_data[0], "dataset=mnist", "model=kde", "dataset.normal_class=8"))
    assert row["status"] == "ok", row.get("error")
    saved = np.load(Path(row["result_path"]).parent / "scores.npz")
    digits = image_data[1]["mnist"]["labels"]["t10k"]
    anomalous = sorted(set(digits.tolist()) - {8})
    per_class = {k: v for k, v in row["metrics"].items() if k.startswith("auroc_vs_")}
    assert sorted(per_class) == sorted(f"auroc_vs_{d}" for d in anomalous)
    for d in anomalous:
        rows = (digits == 8) | (digits == d)
        expected = roc_auc_score(saved["labels"][rows], saved["scores"][rows])
        assert per_class[f"auroc_vs_{d}"] == pytest.approx(expected)
    out = tmp_path / "tables" / "t"
    table_main([str(tmp_path / "outputs"), "--by-anomaly-class", "--out", str(out)])
    printed = capsys.readouterr()
    assert "against each anomalous class alone" in printed.out and "wrote" in printed.err
    table = pd.read_csv(f"{out}_one_class_auroc_by_anomaly_class.csv", dtype=str)
    assert list(table.columns) == ["dataset", "class", "model", "seeds", "AUROC", *(f"vs {d}" for d in anomalous)]
    line = table.iloc[0]
    assert (line["class"], line["model"], line["seeds"]) == ("8", "kde", "1")
    assert [float(line[f"vs {d}"]) for d in anomalous] == [round(100 * per_class[f"auroc_vs_{d}"], 1)
                                                           for d in anomalous]
    assert (out.parent / "t_one_class_auroc_by_anomaly_class.md").read_text().startswith("**AUROC (%) against")


def test_ocsvm_nu_falls_back_to_0_1_without_contamination(image_data, tmp_path):
    from ganad_bench.config import to_container

    cfg = to_container(compose(tmp_path, image_data[0], "model=ocsvm", "dataset=mnist"))
    assert cfg["protocol"]["contamination"] is None and cfg["model"]["params"]["nu"] == 0.1


def test_a_contamination_set_on_an_image_protocol_flags_the_top_share(image_data, tmp_path):
    """`protocol.contamination` on an image protocol is honoured, never ignored: its top share of the test scores
    is flagged, precision / recall / F1 of the anomalies beside AUROC (as scikit-learn counts them), and
    OC-SVM's nu follows it."""
    from sklearn.metrics import precision_recall_fscore_support

    from ganad_bench.config import to_container
    from ganad_bench.run import run

    row = run(compose(tmp_path, image_data[0], "dataset=mnist", "protocol.contamination=0.5"))
    assert row["status"] == "ok" and row["contamination"] == 0.5
    assert {"auroc", "auprc", "precision", "recall", "f1"} <= set(row["metrics"])
    run_dir = next((tmp_path / "outputs" / "results").rglob("result.json")).parent
    scores = np.load(run_dir / "scores.npz")
    flagged = scores["scores"] >= scores["threshold"]  # the threshold the run keeps for reuse
    assert flagged.mean() == pytest.approx(0.5, abs=0.05)
    precision, recall, f1, _ = precision_recall_fscore_support(scores["labels"], flagged, average="binary")
    assert row["metrics"]["f1"] == pytest.approx(f1) and row["metrics"]["precision"] == pytest.approx(precision)
    cfg = to_container(compose(tmp_path, image_data[0], "model=ocsvm", "dataset=mnist", "protocol.contamination=0.2"))
    assert cfg["model"]["params"]["nu"] == 0.2


def test_isolation_forest_on_mnist_takes_deep_svdds_preprocessing(image_data, tmp_path):
    """MEMGAN Table 1's IF column is Deep SVDD's IF: L1 contrast normalisation, PCA to 95 % of the variance
    (conf/dataset_model/mnist_iforest.yaml); elsewhere IF sees the inputs as they are (ALAD Sec. V-B)."""
    from ganad_bench.config import to_container

    on_mnist = to_container(compose(tmp_path, image_data[0], "model=iforest", "dataset=mnist"))["model"]["params"]
    assert on_mnist["contrast_norm"] == "l1" and on_mnist["pca"] == 0.95
    on_svhn = to_container(compose(tmp_path, image_data[0], "model=iforest", "dataset=svhn"))["model"]["params"]
    assert on_svhn["contrast_norm"] is None and on_svhn["pca"] is None


def test_unknown_normal_class_stops_the_run_before_any_result(image_data, tmp_path):
    from ganad_bench.run import run

    with pytest.raises(ConfigError, match=r"choose an index 0..9 or a name: 0 \(airplane\)"):
        run(compose(tmp_path, image_data[0], "dataset=cifar10", "dataset.normal_class=dragon"))
    assert not list((tmp_path / "outputs").rglob("result.json"))


# --------------------------------------------------------------------------------------- real MNIST files
@pytest.fixture
def real_settings(tmp_path):
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real data folder {SHARED_DATA}/mnist is absent (set GANAD_SHARED_DATA)")
    return DataSettings(data_dir=SHARED_DATA, cache_dir=tmp_path / "cache", download=False)


@pytest.mark.real_data
def test_real_mnist(real_settings):
    raw = load_raw("mnist", None, real_settings)  # verified against the MANIFEST's SHA-256s
    assert raw.features.shape == (70000, 1, 28, 28) and raw.features.dtype == np.uint8
    train, test = raw.official_split == 0, raw.official_split == 1
    assert np.bincount(raw.labels[train]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(raw.labels[test]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert raw.features.max() == 255 and raw.features.min() == 0
    split = one_class_split(raw, 0, seed=0)
    assert split.sizes() == {"n_train": 5923, "n_val": 0, "n_test": 10000, "n_test_anomalies": 9020}


@pytest.mark.real_data
def test_real_mnist_iforest_class_0_near_memgan_table_1(real_settings, tmp_path):
    from ganad_bench.run import run

    row = run(compose(tmp_path, SHARED_DATA, "model=iforest", "dataset=mnist", "dataset.normal_class=0"))
    assert row["status"] == "ok" and row["sizes"]["n_train"] == 5923
    assert abs(row["metrics"]["auroc"] - 0.980) < 0.03  # MEMGAN Table 1, IF, class 0

"""The Omniglot loader on tiny zips written here in the official layout (`images_background.zip` /
`images_evaluation.zip`, `<folder>/<Alphabet>/<characterNN>/<id>.png`, 105 x 105 1-bit PNGs with black strokes
on white): shapes, resize, inversion, labels and splits, the checksum and missing-file messages, damaged
zips, and AMA Table 1's Fashion-MNIST vs Omniglot pair end to end.

As in tests/test_image_data.py, the tiny files' checksums replace the canonical ones in a monkeypatched copy
of the registry, so the real verification path runs while the production constants stay untouched."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganad_bench.data import image_sources as img
from ganad_bench.data.files import DataSettings
from ganad_bench.data.registry import load_raw
from ganad_bench.errors import ChecksumMismatch, DataError
from tests.test_image_data import compose, trust_files, write_idx_set

URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# alphabet -> characters -> drawings per character; sorted member order puts Greek before Latin
BACKGROUND = {"Latin": 2, "Greek": 2}
EVALUATION = {"Tengwar": 2, "Angelic": 2}
DRAWINGS = 2


def stroke_glyph(column: int, width: int = 16, top: int = 20, bottom: int = 85) -> np.ndarray:
    """A 105 x 105 1-bit drawing as the files store it: True (white) background, a black vertical bar."""
    glyph = np.ones((105, 105), dtype=bool)
    glyph[top:bottom, column:column + width] = False
    return glyph


def png_bytes(glyph: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(glyph).save(buffer, format="PNG")  # a bool array is a mode "1" (1-bit) image
    return buffer.getvalue()


def write_zip(path: Path, folder: str, alphabets: dict[str, int], start: int = 0) -> list[int]:
    """One official-layout zip (folder entries, a macOS metadata file that must be skipped, the PNGs); returns
    each drawing's bar column, in sorted member order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = {}
    for a, alphabet in enumerate(alphabets):
        for c in range(alphabets[alphabet]):
            for d in range(DRAWINGS):
                column = 5 + 7 * ((start + 4 * a + 2 * c + d) % 12)
                name = f"{folder}/{alphabet}/character{c + 1:02d}/{start + a:04d}_{c * DRAWINGS + d + 1:02d}.png"
                members[name] = column
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/", b"")
        for alphabet in alphabets:
            archive.writestr(f"{folder}/{alphabet}/", b"")
        archive.writestr(f"{folder}/Latin/character01/._0001_01.png", b"\x00\x05\x16\x07")  # AppleDouble junk
        for name, column in members.items():
            archive.writestr(name, png_bytes(stroke_glyph(column)))
    return [members[name] for name in sorted(members)]


def write_omniglot(data: Path) -> dict:
    return {"background": write_zip(data / "omniglot" / "images_background.zip", "images_background", BACKGROUND),
            "evaluation": write_zip(data / "omniglot" / "images_evaluation.zip", "images_evaluation", EVALUATION,
                                    start=30)}


@pytest.fixture
def omniglot(tmp_path, monkeypatch):
    data = tmp_path / "data"
    columns = write_omniglot(data)
    write_idx_set(data / "fashion_mnist", seed=100)  # 60 train / 30 test images
    trust_files(monkeypatch, data)
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    return data, settings, columns


# ------------------------------------------------------------------------------------------------- loader
def test_both_zips_load_as_28x28_uint8_with_alphabet_labels(omniglot):
    data, settings, _ = omniglot
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    raw = load_raw("omniglot", None, settings)
    assert raw.features.shape == (16, 1, 28, 28) and raw.features.dtype == np.uint8 and raw.is_image
    assert raw.official_split.tolist() == [0] * 8 + [1] * 8  # background = official train, evaluation = test
    names = list(img.OMNIGLOT_ALPHABETS)
    expected = [names.index(a) for a in ("Greek", "Latin", "Angelic", "Tengwar") for _ in range(4)]
    assert raw.labels.tolist() == expected and raw.class_names == names and len(names) == 50
    assert img.CLASS_NAMES["omniglot"] == img.OMNIGLOT_ALPHABETS
    assert set(raw.files) == {"images_background.zip", "images_evaluation.zip"}
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # read from the zips, nothing extracted


def test_glyphs_are_inverted_and_resized(omniglot):
    _, settings, columns = omniglot
    raw = load_raw("omniglot", None, settings)
    x = raw.features[:, 0].astype(np.float64)
    assert x.min() == 0 and x.max() == 255
    assert (x[:, :4, :] == 0).all() and (x[:, -4:, :] == 0).all()  # white paper -> black background
    scale = 28 / 105
    for image, column in zip(x, columns["background"] + columns["evaluation"], strict=True):
        assert image[14].max() == 255  # a pixel whose whole filter support lies in the 16-pixel bar: full stroke
        # the resize keeps the bar where it was (centre of mass) and its ink (a normalised, area-like filter)
        centre = (image.sum(axis=0) * np.arange(28)).sum() / image.sum()
        assert abs(centre - ((column + 8) * scale - 0.5)) < 0.15
        assert image.sum() / 255 == pytest.approx(16 * 65 * scale ** 2, rel=0.03)


def test_the_production_registry_checks_the_torchvision_md5(tmp_path):
    data = tmp_path / "data"
    write_omniglot(data)
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(ChecksumMismatch, match=rf"has md5 .*expected 68d2efa1b917.*from {URL}images_background.zip"):
        load_raw("omniglot", None, settings)


def test_missing_zips_are_one_line_naming_the_url_and_data_dir(tmp_path):
    settings = DataSettings(data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError) as caught:
        load_raw("omniglot", None, settings)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"images_background.zip not found: put it at {tmp_path}/empty/omniglot/")
    assert f"(from {URL}images_background.zip)" in message
    assert "paths.data_dir=DIR / GANAD_DATA_DIR to a folder holding omniglot/images_background.zip" in message


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def damage_alphabet(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("images_background/Klingon/character01/9999_01.png", png_bytes(stroke_glyph(40)))


def damage_size(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("images_background/Latin/character09/0001_01.png", png_bytes(np.ones((28, 28), bool)))


def damage_png(path: Path) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("images_background/Latin/character09/0001_01.png", png_bytes(stroke_glyph(9))[:60])


@pytest.mark.parametrize("damage,expected", [
    (damage_truncate, r"is not a readable Omniglot zip \(BadZipFile"),
    (damage_alphabet, r"alphabet folders that are not the official set's \(Klingon\)"),
    (damage_size, r"images_background/Latin/character09/0001_01.png is 28 x 28 pixels, expected 105 x 105"),
    (damage_png, r"is not a readable Omniglot zip"),
])
def test_damaged_zips_are_one_line_data_errors(tmp_path, monkeypatch, damage, expected):
    data = tmp_path / "data"
    write_omniglot(data)
    damage(data / "omniglot" / "images_background.zip")
    trust_files(monkeypatch, data)  # the damaged file passes its checksum: the parser must catch it
    settings = DataSettings(data_dir=data, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError, match=expected) as caught:
        load_raw("omniglot", None, settings)
    assert "\n" not in str(caught.value) and f"from {URL}images_background.zip" in str(caught.value)


# ------------------------------------------------------------------------------------------------ configs
def test_omniglot_config_defaults_to_alad_image_and_takes_alphabet_names(tmp_path):
    from ganad_bench.config import check_run_config, to_container

    config = check_run_config(to_container(compose(tmp_path, tmp_path, "dataset=omniglot",
                                                   "dataset.normal_class=Latin")))
    assert config["protocol"]["name"] == "alad_image" and config["dataset"]["source"] == "zip"
    assert config["dataset"]["normal_class"] == img.OMNIGLOT_ALPHABETS.index("Latin")


def test_fashion_mnist_vs_omniglot_runs_end_to_end(omniglot, tmp_path):
    from ganad_bench.run import run

    data = omniglot[0]
    row = run(compose(tmp_path, data, "model=iforest", "dataset=fashion_mnist", "protocol=cross_dataset",
                      "protocol.anomaly_dataset=omniglot"))
    assert row["status"] == "ok" and row["protocol"] == "cross_dataset" and row["anomaly_dataset"] == "omniglot"
    assert row["sizes"] == {"n_train": 60, "n_val": 0, "n_test": 36, "n_test_anomalies": 6}  # 20 % of 30
    assert set(row["anomaly_data_files"]) == {"images_background.zip", "images_evaluation.zip"}
    assert set(row["metrics"]) == {"auroc", "auprc"}


def test_a_missing_omniglot_stops_the_run_with_the_download_url(tmp_path, monkeypatch):
    from ganad_bench.run import run

    data = tmp_path / "data"
    write_idx_set(data / "fashion_mnist", seed=100)
    trust_files(monkeypatch, data)
    with pytest.raises(DataError, match=rf"images_background.zip not found: .*\(from {URL}images_background.zip\), "
                                        r"or set paths.data_dir=DIR"):
        run(compose(tmp_path, data, "dataset=fashion_mnist", "protocol=cross_dataset",
                    "protocol.anomaly_dataset=omniglot"))
    assert not list((tmp_path / "outputs").rglob("result.json"))

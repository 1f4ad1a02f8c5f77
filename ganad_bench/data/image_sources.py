"""Parsers for the canonical files of the image benchmarks (DESIGN.md, Datasets table): MNIST, Fashion-MNIST,
CIFAR-10, SVHN, and Omniglot (AMA Table 1's second anomaly set for Fashion-MNIST).

Every parser returns the same arrays, which `RawDataset.from_arrays` turns into a dataset:

- ``features``: uint8 images of shape (N, C, H, W) (C = 1 for MNIST / Fashion-MNIST / Omniglot, 3 for CIFAR-10 /
  SVHN), exactly the upstream pixel values (Omniglot: its 105 x 105 glyphs resized to 28 x 28 and inverted, see
  `parse_omniglot`); scaling is a preprocessing step (`ganad_bench.data.preprocessing`);
- ``labels``: the ORIGINAL class index 0..9 (SVHN's label 10 is the digit 0, so it becomes 0; Omniglot: the
  alphabet, 0..49);
- ``official_split``: 0 for a row of the official training set, 1 for the official test set, training
  rows first; the image protocols (`ganad_bench.data.protocols`) start from it;
- ``class_names``: the name of each class index (`dataset.normal_class` accepts either).

A damaged file is normally caught by its checksum before it gets here (`ganad_bench.data.files`); the
parsers still turn every decoding failure into a one-line `DataError` naming the file to replace.
"""

from __future__ import annotations

import functools
import gzip
import io
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ganad_bench.data.files import CanonicalFile
from ganad_bench.errors import DataError, GanadError

DIGITS = tuple(str(d) for d in range(10))

# ---------------------------------------------------------------------------------------------- MNIST
MNIST_PAGE = "http://yann.lecun.com/exdb/mnist/"
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# shared/data/MANIFEST.md: all four equal the official files (md5 as published upstream).
MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                   "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                   "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                  "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                  "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_FILES = tuple(
    CanonicalFile(name=name, subdir="mnist", sha256=MNIST_CHECKSUMS[name][0], md5=MNIST_CHECKSUMS[name][1],
                  page=MNIST_PAGE, urls=tuple(mirror + name for mirror in MNIST_MIRRORS))
    for name in IDX_NAMES
)

# ---------------------------------------------------------------------------------------- Fashion-MNIST
FASHION_PAGE = "https://github.com/zalandoresearch/fashion-mnist"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# The MD5s published in the Fashion-MNIST repository's README (no SHA-256 is published).
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_FILES = tuple(
    CanonicalFile(name=name, subdir="fashion_mnist", sha256=None, md5=FASHION_MD5[name], page=FASHION_PAGE,
                  urls=(FASHION_URL + name,))
    for name in IDX_NAMES
)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

# -------------------------------------------------------------------------------------------- CIFAR-10
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR10_FILE = CanonicalFile(
    name="cifar-10-python.tar.gz",
    subdir="cifar10",
    sha256=None,
    md5="c58f30108f718f92721af3b95e74349a",
    page=CIFAR_PAGE,
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
)
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
# batches.meta's label_names of the official archive (the parser reads them from the file)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# ------------------------------------------------------------------------------------------------ SVHN
SVHN_PAGE = "http://ufldl.stanford.edu/housenumbers/"
SVHN_FILES = (
    CanonicalFile(name="train_32x32.mat", subdir="svhn", sha256=None, md5="e26dedcc434d2e4c54c9b2d4a06d8373",
                  page=SVHN_PAGE, urls=("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",)),
    CanonicalFile(name="test_32x32.mat", subdir="svhn", sha256=None, md5="eb5a983be6a315427106f1b164d9cef3",
                  page=SVHN_PAGE, urls=("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",)),
)

# -------------------------------------------------------------------------------------------- Omniglot
OMNIGLOT_PAGE = "https://github.com/brendenlake/omniglot"
OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# Upstream publishes no checksum. These are the MD5s torchvision verifies the same two files against
# (pytorch/vision, torchvision/datasets/omniglot.py, `zips_md5`), the reference every Omniglot user shares.
OMNIGLOT_MD5 = {"images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
                "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811"}
# `page` is the file's own download URL, so that the missing-file and checksum messages name it exactly.
OMNIGLOT_FILES = tuple(
    CanonicalFile(name=name, subdir="omniglot", sha256=None, md5=md5, page=OMNIGLOT_URL + name,
                  urls=(OMNIGLOT_URL + name,))
    for name, md5 in OMNIGLOT_MD5.items()
)
# The alphabet folders of the two zips (Lake et al.'s background / evaluation split: 964 + 659 characters,
# 19,280 + 13,180 drawings), in sorted order; the class index is the position in background + evaluation.
OMNIGLOT_BACKGROUND = (
    "Alphabet_of_the_Magi", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian", "Asomtavruli_(Georgian)", "Balinese",
    "Bengali", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Braille", "Burmese_(Myanmar)", "Cyrillic",
    "Early_Aramaic", "Futurama", "Grantha", "Greek", "Gujarati", "Hebrew", "Inuktitut_(Canadian_Aboriginal_Syllabics)",
    "Japanese_(hiragana)", "Japanese_(katakana)", "Korean", "Latin", "Malay_(Jawi_-_Arabic)", "Mkhedruli_(Georgian)",
    "N_Ko", "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Sanskrit", "Syriac_(Estrangelo)", "Tagalog", "Tifinagh",
)
OMNIGLOT_EVALUATION = (
    "Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta", "Ge_ez", "Glagolitic", "Gurmukhi", "Kannada",
    "Keble", "Malayalam", "Manipuri", "Mongolian", "Old_Church_Slavonic_(Cyrillic)", "Oriya", "Sylheti",
    "Syriac_(Serto)", "Tengwar", "Tibetan", "ULOG",
)
OMNIGLOT_ALPHABETS = OMNIGLOT_BACKGROUND + OMNIGLOT_EVALUATION
OMNIGLOT_GLYPH = 105  # the drawings' side in the zips
OMNIGLOT_SIDE = 28  # MNIST's side: the cross_dataset protocol needs Fashion-MNIST's (1, 28, 28)

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte data, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte data, 1 dimension


def _replace(path, page: str) -> str:
    return f"replace {Path(path).name} with the official file from {page}"


def read_idx(path, magic: int, page: str) -> np.ndarray:
    """One gzip IDX file (LeCun's format: big-endian magic, big-endian dimension sizes, then uint8 data)."""
    try:
        with gzip.open(path, "rb") as handle:
            blob = handle.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError; a truncated file an EOFError
        raise DataError(f"{path} is not a readable gzip file ({err}): {_replace(path, page)}") from None
    n_dims = magic & 0xFF  # the magic's last byte is the number of dimensions
    header = 4 + 4 * n_dims
    if len(blob) < header:
        raise DataError(f"{path} is too short to be an IDX file: {_replace(path, page)}")
    found = int.from_bytes(blob[:4], "big")
    if found != magic:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(f"{path} has IDX magic {found:#x}, expected {magic:#x} for {kind} (a wrong or damaged "
                        f"file): {_replace(path, page)}")
    shape = tuple(int.from_bytes(blob[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims))
    expected = header + int(np.prod(shape))
    if len(blob) != expected:
        raise DataError(f"{path} holds {len(blob) - header} data bytes but its header announces {shape} "
                        f"({expected - header} bytes): {_replace(path, page)}")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def parse_idx_dataset(train_images, train_labels, test_images, test_labels, *, class_names: tuple[str, ...],
                      page: str) -> dict[str, np.ndarray]:
    """MNIST / Fashion-MNIST: the 4 gzip IDX files -> (N, 1, 28, 28) uint8, train rows then test rows."""
    images, labels = [], []
    for image_path, label_path in ((train_images, train_labels), (test_images, test_labels)):
        x = read_idx(image_path, IDX_IMAGES_MAGIC, page)
        y = read_idx(label_path, IDX_LABELS_MAGIC, page)
        if len(x) != len(y):
            raise DataError(f"{image_path} holds {len(x)} images but {label_path} {len(y)} labels: "
                            f"{_replace(label_path, page)}")
        images.append(x[:, None])  # add the channel axis
        labels.append(y)
    return _arrays(images, labels, class_names, Path(label_path), page)


def parse_cifar10(tarball) -> dict[str, np.ndarray]:
    """cifar-10-python.tar.gz: pickled `data_batch_1..5` and `test_batch` (b'data': N x 3072 uint8 rows,
    channel-major, i.e. already CHW; b'labels': list of 0..9) and `batches.meta` (b'label_names').

    The members are unpickled straight from the tarball in ONE streaming pass (no extraction, and no
    backward seek that would decompress the 170 MB archive again per member). Unpickling is safe here
    because the tarball has passed its MD5 check before this runs."""
    wanted = (*CIFAR_TRAIN_BATCHES, "test_batch", "batches.meta")
    payloads: dict[str, dict] = {}
    try:
        with tarfile.open(tarball, "r|gz") as tar:
            for member in tar:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    payloads[name] = pickle.load(tar.extractfile(member), encoding="bytes")
        missing = [name for name in wanted if name not in payloads]
        if missing:
            raise DataError(f"{tarball} lacks {', '.join(missing)}: {_replace(tarball, CIFAR_PAGE)}")
        names = tuple(n.decode() for n in payloads["batches.meta"][b"label_names"])
        images, labels = [], []
        for group in (CIFAR_TRAIN_BATCHES, ("test_batch",)):
            data = np.concatenate([np.asarray(payloads[b][b"data"], dtype=np.uint8) for b in group])
            targets = np.concatenate([np.asarray(payloads[b][b"labels"], dtype=np.int64) for b in group])
            if data.shape != (len(targets), 3072):
                raise DataError(f"{tarball}: {', '.join(group)} hold data of shape {data.shape} for "
                                f"{len(targets)} labels, expected rows of 3072 bytes: {_replace(tarball, CIFAR_PAGE)}")
            images.append(data.reshape(len(data), 3, 32, 32))
            labels.append(targets)
    except GanadError:
        raise
    except Exception as err:  # tarfile, gzip, zlib and pickle raise many types on damage; all mean "replace it"
        raise DataError(f"{tarball} is not a readable CIFAR-10 python tarball ({type(err).__name__}: {err}): "
                        f"{_replace(tarball, CIFAR_PAGE)}") from None
    return _arrays(images, labels, names, Path(tarball), CIFAR_PAGE)


def parse_svhn(train_mat, test_mat) -> dict[str, np.ndarray]:
    """SVHN cropped digits: train_32x32.mat / test_32x32.mat (MATLAB v5; X is 32 x 32 x 3 x N uint8, y is
    N x 1 in 1..10 where 10 is the digit 0) -> (N, 3, 32, 32) uint8 and labels 0..9."""
    from scipy.io import loadmat

    images, labels = [], []
    for path in (train_mat, test_mat):
        try:
            mat = loadmat(path)
            x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
        except Exception as err:  # scipy raises many types on a damaged file; all mean "replace it"
            raise DataError(f"{path} is not an SVHN .mat file with keys X and y ({type(err).__name__}: {err}): "
                            f"{_replace(path, SVHN_PAGE)}") from None
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
            raise DataError(f"{path}: X is {x.shape} and y has {len(y)} rows, expected 32 x 32 x 3 x N and N: "
                            f"{_replace(path, SVHN_PAGE)}")
        if len(y) and (y.min() < 1 or y.max() > 10):
            raise DataError(f"{path}: labels span {y.min()}..{y.max()}, expected 1..10: {_replace(path, SVHN_PAGE)}")
        images.append(np.ascontiguousarray(x.transpose(3, 2, 0, 1), dtype=np.uint8))  # HWCN -> NCHW
        labels.append(y.astype(np.int64) % 10)  # label 10 is the digit 0
    return _arrays(images, labels, DIGITS, Path(test_mat), SVHN_PAGE)


def parse_omniglot(background_zip, evaluation_zip) -> dict[str, np.ndarray]:
    """images_background.zip / images_evaluation.zip (`<folder>/<Alphabet>/<characterNN>/<id>.png`, 105 x 105
    1-bit PNGs, black strokes on white) -> (N, 1, 28, 28) uint8, read straight from the zips (no extraction).

    The background set is the official train split (0) and the evaluation set the test split (1), Lake et
    al.'s own split; `cross_dataset` draws its anomalies from the evaluation set. Labels are alphabets (50
    classes): Omniglot serves as an anomaly set, where labels are unused, and an alphabet is a meaningful
    class for `alad_image` (one alphabet normal), which the 1,623 characters of 20 drawings each are not."""
    images, labels = [], []
    for path, alphabets in ((background_zip, OMNIGLOT_BACKGROUND), (evaluation_zip, OMNIGLOT_EVALUATION)):
        x, y = _read_glyph_zip(Path(path), alphabets)
        images.append(x)
        labels.append(y)
    return _arrays(images, labels, OMNIGLOT_ALPHABETS, Path(evaluation_zip), OMNIGLOT_PAGE)


def _read_glyph_zip(path: Path, alphabets: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every drawing of one Omniglot zip, sorted by member name (deterministic row order), with its
    alphabet's class index. Members outside `<zip stem>/<Alphabet>/<character>/<id>.png` (folders, macOS
    metadata) are skipped; an alphabet that is not the official set's means another file."""
    page = OMNIGLOT_URL + path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(name for name in archive.namelist() if _is_glyph(name, path.stem))
            if not members:
                raise DataError(f"{path} holds no {path.stem}/<alphabet>/<character>/<id>.png drawing: "
                                f"{_replace(path, page)}")
            unknown = sorted({name.split("/")[1] for name in members} - set(alphabets))
            if unknown:
                raise DataError(f"{path} has alphabet folders that are not the official set's ({', '.join(unknown)}):"
                                f" {_replace(path, page)}")
            glyphs = np.stack([_glyph(archive.read(name), path, name) for name in members])
    except GanadError:
        raise
    except Exception as err:  # zipfile, zlib and PIL raise many types on damage; all mean "replace it"
        raise DataError(f"{path} is not a readable Omniglot zip ({type(err).__name__}: {err}): "
                        f"{_replace(path, page)}") from None
    offset = OMNIGLOT_ALPHABETS.index(alphabets[0])
    labels = np.array([offset + alphabets.index(name.split("/")[1]) for name in members], dtype=np.int64)
    return glyphs[:, None], labels


def _is_glyph(name: str, folder: str) -> bool:
    parts = name.split("/")
    return len(parts) == 4 and parts[0] == folder and parts[3].endswith(".png") and not parts[3].startswith(".")


def _glyph(blob: bytes, path: Path, name: str) -> np.ndarray:
    """One 105 x 105 drawing -> 28 x 28 uint8, strokes bright on a dark background.

    Resize: Pillow's bilinear filter, which widens its support by the scale factor when it shrinks (an
    anti-aliased, area-like average of the 3.75 x 3.75 source pixels behind each output pixel): exactly
    torchvision's `transforms.Resize` on an image, the resize of AMA's public code. AMA does not say how it
    sized Omniglot; 28 x 28 is what pairing it with Fashion-MNIST requires. Inversion: the files draw black
    strokes on white; MNIST and Fashion-MNIST draw the object bright on black, and un-inverted glyphs would
    be told apart from Fashion-MNIST by their mean brightness alone."""
    from PIL import Image  # Pillow: a dependency of matplotlib

    with Image.open(io.BytesIO(blob)) as image:
        if image.size != (OMNIGLOT_GLYPH, OMNIGLOT_GLYPH):
            raise DataError(f"{path}: {name} is {image.size[0]} x {image.size[1]} pixels, expected {OMNIGLOT_GLYPH}"
                            f" x {OMNIGLOT_GLYPH}: {_replace(path, OMNIGLOT_URL + path.name)}")
        bilinear = getattr(Image, "Resampling", Image).BILINEAR  # Pillow < 9.1 has no Resampling enum
        small = image.convert("L").resize((OMNIGLOT_SIDE, OMNIGLOT_SIDE), bilinear)
    return 255 - np.asarray(small, dtype=np.uint8)


def _arrays(images: list[np.ndarray], labels: list[np.ndarray], class_names, path: Path, page: str) -> dict:
    """Train and test parts -> the arrays of one dataset (train rows first)."""
    labels_all = np.concatenate(labels).astype(np.int64)
    if len(labels_all) and (labels_all.min() < 0 or labels_all.max() >= len(class_names)):
        raise DataError(f"{path}: labels span {labels_all.min()}..{labels_all.max()} but there are "
                        f"{len(class_names)} classes: {_replace(path, page)}")
    return {
        "features": np.concatenate(images),
        "labels": labels_all,
        "official_split": np.concatenate([np.full(len(y), i, dtype=np.int8) for i, y in enumerate(labels)]),
        "class_names": np.array(class_names, dtype=str),
    }


parse_mnist = functools.partial(parse_idx_dataset, class_names=DIGITS, page=MNIST_PAGE)
parse_fashion_mnist = functools.partial(parse_idx_dataset, class_names=FASHION_CLASSES, page=FASHION_PAGE)

# each image dataset's classes, by index (what `dataset.normal_class` names, before any file is read)
CLASS_NAMES = {"mnist": DIGITS, "fashion_mnist": FASHION_CLASSES, "cifar10": CIFAR10_CLASSES, "svhn": DIGITS,
               "omniglot": OMNIGLOT_ALPHABETS}

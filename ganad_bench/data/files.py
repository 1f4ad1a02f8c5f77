"""Locating canonical data files: a user folder, the download cache, the package itself, or a
checksum-verified download from the official source.

Search order for a file ``<subdir>/<name>``:

1. ``paths.data_dir`` (or the environment variable ``GANAD_DATA_DIR``): ``<data_dir>/<subdir>/<name>``,
   then ``<data_dir>/<name>``;
2. the cache: ``<cache_dir>/downloads/<subdir>/<name>`` (``GANAD_CACHE_DIR``, default ``~/.cache/ganad_bench``);
3. files shipped inside the package (the embedded Thyroid);
4. a download from the official URLs into the cache, when ``paths.download`` is true.

Every file is verified against its SHA-256 before use (or, for files whose upstream publishes only an
MD5, such as Fashion-MNIST, CIFAR-10 and SVHN, against that MD5); a mismatch is an error, never a silent
reload.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ganad_bench.errors import ChecksumMismatch, ConfigError, DataFileMissing

EMBEDDED_DIR = Path(__file__).parent / "embedded"
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class CanonicalFile:
    """One file in its canonical upstream form.

    `sha256` is verified when set; otherwise `md5` (the only checksum some upstreams publish). At least
    one of them is required: an unverifiable file is never used."""

    name: str
    subdir: str
    sha256: str | None
    page: str
    urls: tuple[str, ...] = ()
    md5: str | None = None

    def __post_init__(self):
        if not self.sha256 and not self.md5:
            raise ValueError(f"CanonicalFile {self.name} needs a sha256 or an md5")

    @property
    def algorithm(self) -> str:
        """The checksum that `verify` uses: sha256 when known, else md5."""
        return "sha256" if self.sha256 else "md5"

    @property
    def checksum(self) -> str:
        return self.sha256 if self.sha256 else self.md5

    @property
    def digest(self) -> str:
        """The verified checksum as recorded in result rows and cache keys: the bare SHA-256 hex (as
        before md5 support existed), or `md5:<hex>`."""
        return self.sha256 if self.sha256 else f"md5:{self.md5}"


DEFAULT_CACHE_DIR = "~/.cache/ganad_bench"


@dataclass(frozen=True)
class DataSettings:
    """Where to look for data and where to cache it (the `paths` config group)."""

    data_dir: Path | None = None
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    download: bool = True

    def __post_init__(self):
        # "~" is the user's home however the settings were made (a literal "~" folder in the working
        # directory would hold a second cache)
        for name in ("data_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser())

    @classmethod
    def from_config(cls, paths_cfg) -> DataSettings:
        data_dir = paths_cfg.get("data_dir") or os.environ.get("GANAD_DATA_DIR") or None
        cache_dir = paths_cfg.get("cache_dir") or os.environ.get("GANAD_CACHE_DIR") or DEFAULT_CACHE_DIR
        for setting, value in (("paths.data_dir (GANAD_DATA_DIR)", data_dir),
                               ("paths.cache_dir (GANAD_CACHE_DIR)", cache_dir)):
            # a file here would be named as the place to put the data in ("put it at <file>/kddcup99/...")
            if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
                raise ConfigError(f"{setting}={value} is not a folder: give a folder")
        return cls(
            data_dir=Path(data_dir).expanduser().resolve() if data_dir else None,
            cache_dir=Path(cache_dir).expanduser().resolve(),
            download=bool(paths_cfg.get("download", True)),
        )

    @property
    def download_dir(self) -> Path:
        return self.cache_dir / "downloads"

    @property
    def parsed_dir(self) -> Path:
        return self.cache_dir / "parsed"


_verified: dict[tuple[str, int, int, str], str] = {}


def hash_of(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, remembered per (path, size, mtime, algorithm) so a sweep hashes each file once."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, algorithm)
    if key not in _verified:
        digest = hashlib.new(algorithm)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def sha256_of(path: Path) -> str:
    return hash_of(path, "sha256")


def matches(path: Path, file: CanonicalFile) -> bool:
    return hash_of(path, file.algorithm) == file.checksum


def verify(path: Path, file: CanonicalFile) -> Path:
    if not matches(path, file):
        actual = hash_of(path, file.algorithm)
        raise ChecksumMismatch(
            f"{path} has {file.algorithm} {actual[:12]}..., expected {file.checksum[:12]}... (corrupted, "
            f"truncated or another version): replace it with the official {file.name} from {file.page}"
        )
    return path


def candidate_paths(file: CanonicalFile, settings: DataSettings) -> list[Path]:
    paths = []
    if settings.data_dir is not None:
        paths += [settings.data_dir / file.subdir / file.name, settings.data_dir / file.name]
    paths.append(settings.download_dir / file.subdir / file.name)
    paths.append(EMBEDDED_DIR / file.name)
    return paths


def locate(file: CanonicalFile, settings: DataSettings) -> Path:
    """Path of a verified local copy of `file`, downloading it when allowed; a precise error otherwise."""
    for path in candidate_paths(file, settings):
        if path.is_file():
            return verify(path, file)
    if settings.download and file.urls:
        downloaded = _download(file, settings.download_dir / file.subdir / file.name)
        if downloaded is not None:
            return downloaded
    where = settings.data_dir or settings.download_dir
    tried = "download failed (offline?); " if settings.download and file.urls else ""
    raise DataFileMissing(
        f"{file.name} not found: {tried}put it at {where / file.subdir / file.name} "
        f"(from {file.page}), or set paths.data_dir=DIR / GANAD_DATA_DIR to a folder holding "
        f"{file.subdir}/{file.name}"
    )


def _download(file: CanonicalFile, target: Path) -> Path | None:
    """Fetch `file` to `target` atomically; None when every URL fails (the caller explains)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for url in file.urls:
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{file.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                shutil.copyfileobj(resp, out)  # every canonical file is served as it is stored
            if not matches(tmp, file):
                continue
            os.replace(tmp, target)
            return target
        except OSError:
            continue
        finally:
            tmp.unlink(missing_ok=True)
    return None

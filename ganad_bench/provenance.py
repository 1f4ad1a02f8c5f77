"""What code and libraries produced a result: recorded in every result row and checkpoint.

`code_version()` is the git commit of the checkout the package runs from, whether its tracked files under
`ganad_bench/` and `conf/` differ from that commit (`git_dirty`), and the package version. An installed
copy that git does not track (site-packages) records the package version only.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

from ganad_bench import __version__

PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """{"version", "git_revision", "git_dirty", "label"}; label is e.g. "1a2b3c4d5e6f", "1a2b3c4d5e6f+dirty"
    or "0.1.0" (an installed copy)."""
    revision = dirty = None
    if _git("ls-files", "--error-unmatch", str(PACKAGE_DIR / "__init__.py")) is not None:
        revision = _git("rev-parse", "HEAD")
        root = _git("rev-parse", "--show-toplevel")
        if revision and root:
            status = _git("status", "--porcelain", "--untracked-files=no", "--", str(PACKAGE_DIR),
                          str(Path(root) / "conf"))
            dirty = bool(status) if status is not None else None
    label = f"{revision[:12]}{'+dirty' if dirty else ''}" if revision else __version__
    return {"version": __version__, "git_revision": revision, "git_dirty": dirty, "label": label}


# the libraries a row records: its key -> (distribution, module)
LIBRARIES = {"torch": ("torch", "torch"), "numpy": ("numpy", "numpy"), "scikit_learn": ("scikit-learn", "sklearn"),
             "hydra": ("hydra-core", "hydra"), "omegaconf": ("omegaconf", "omegaconf")}


def versions() -> dict[str, str]:
    """The versions a row records, from the installed distributions' metadata: reading it imports nothing (a
    classic run loads no torch); a library installed without metadata is imported for its `__version__`."""
    found = {"ganad_bench": __version__, "python": platform.python_version()}
    for key, (distribution, module) in LIBRARIES.items():
        try:
            found[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[key] = importlib.import_module(module).__version__
    return found


def version_line() -> str:
    """What `--version` prints: the package version, the code it runs (commit, +dirty) when git tracks it,
    and the libraries a row records."""
    code = code_version()
    libraries = versions()
    head = f"ganad_bench {libraries.pop('ganad_bench')}"
    if code["git_revision"]:
        head += f" (code {code['label']})"
    return " · ".join([head, *(f"{name.replace('_', '-')} {version}" for name, version in libraries.items())])


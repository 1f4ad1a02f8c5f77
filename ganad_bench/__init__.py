"""ganad_bench: GAN-based anomaly detection experiments, with the published tables beside your numbers.

The public functions are imported on first use, so that the command line and the table command start
without loading torch."""

__version__ = "0.1.0"
__all__ = ["__version__", "available_detectors", "create_detector", "load_results", "load_run"]
_HOMES = {"available_detectors": "ganad_bench.models.kit.catalog",
          "create_detector": "ganad_bench.models.kit.registry",
          "load_results": "ganad_bench.results.store", "load_run": "ganad_bench.runs"}


def _configs_from_the_checkout() -> None:
    """Imported from a source checkout with no install (`PYTHONPATH=<checkout>`, or pytest's `pythonpath` with
    the package installed elsewhere by a plain `pip install .`): the configs are the checkout's `conf/`, which
    an install maps to the package `ganad_bench.conf`. A last-resort finder gives that name to the same
    folder, so that Hydra finds them alike; an installed `ganad_bench.conf` is found first."""
    import importlib.abc
    import importlib.util
    import sys
    from pathlib import Path

    conf = Path(__file__).resolve().parent.parent / "conf"
    if not (conf / "config.yaml").is_file():
        return

    class CheckoutConfigs(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname != "ganad_bench.conf":
                return None
            return importlib.util.spec_from_file_location(fullname, conf / "__init__.py",
                                                          submodule_search_locations=[str(conf)])

    sys.meta_path.append(CheckoutConfigs())


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'ganad_bench' has no attribute {name!r}")


_configs_from_the_checkout()

"""ganad_bench: GAN-based anomaly detection experiments, with the published tables beside your numbers.

The public functions are imported on first use, so that the command line and the table command start
without loading torch."""

__version__ = "0.1.0"
__all__ = ["__version__", "available_detectors", "create_detector", "load_results", "load_run"]
_HOMES = {"available_detectors": "ganad_bench.models.kit.registry",
          "create_detector": "ganad_bench.models.kit.registry",
          "load_results": "ganad_bench.results.store", "load_run": "ganad_bench.runs"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'ganad_bench' has no attribute {name!r}")

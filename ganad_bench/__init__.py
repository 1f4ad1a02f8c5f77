"""ganad_bench: GAN-based anomaly detection experiments, with the published tables beside your numbers.

`create_detector` and `available_detectors` are imported on first use, so that the command line and the
table command start without loading torch."""

__version__ = "0.1.0"
__all__ = ["__version__", "available_detectors", "create_detector"]


def __getattr__(name: str):
    if name in ("available_detectors", "create_detector"):
        from ganad_bench.models.kit import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'ganad_bench' has no attribute {name!r}")

"""ganad_bench: GAN-based anomaly detection experiments, with the published tables beside your numbers."""

from ganad_bench.models.kit.registry import available_detectors, create_detector

__version__ = "0.1.0"
__all__ = ["__version__", "available_detectors", "create_detector"]

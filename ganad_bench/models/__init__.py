"""Detectors: one file per method, a registry (name -> class), and the shared contract in `base`."""

from ganad_bench.models import iforest, kde, ocsvm  # noqa: F401  (registers the detectors)

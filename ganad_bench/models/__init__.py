"""Detectors: one file per method, a registry (name -> class), and the shared contract in `base`."""

from ganad_bench.models import alad, anogan, egbad, ganomaly, iforest, kde, ocsvm  # noqa: F401  (registers the detectors)

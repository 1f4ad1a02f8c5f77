"""Detectors: one file per method, a registry (name -> class), and the shared contract in `base`.

Importing this package imports every module in it, so each model file registers itself with
`@register` and no list of models is kept here."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

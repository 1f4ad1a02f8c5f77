"""Detectors: one file per method (a leaf: nothing outside the method files imports one), built on the kit
in `models/kit/` (the contract, the registry, the deep-detector base, network blocks, shared losses and
input maps), which imports no method.

Importing this package imports every module in it, so each method file registers itself with
`@register` and no list of models is kept here."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

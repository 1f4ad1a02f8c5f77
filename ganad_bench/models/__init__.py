"""Detectors: one file per method (a leaf: nothing outside the method files imports one), built on the kit
in `models/kit/` (the contract, the registry, the deep-detector base, network blocks, shared losses and
input maps), which imports no method.

Nothing is imported here: the catalog (`kit.catalog`) reads what each method file registers from its source,
and `kit.registry.detector_class` imports the one method file a run needs, whose `@register` records its
class. So no list of models is kept, and the command line starts without torch."""

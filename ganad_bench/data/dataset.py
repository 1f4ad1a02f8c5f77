"""The in-memory form every source produces, before any protocol is applied."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ganad_bench.errors import ConfigError


@dataclass
class RawDataset:
    """Features with their ORIGINAL labels (class ids or label strings), never 0/1 anomaly flags:
    turning labels into anomaly flags is the protocol's job (`ganad_bench.data.protocols`).

    `anomaly_labels` is the canonical anomaly definition of the tabular benchmarks (DESIGN.md), used by
    the `tabular` protocol. `official_split` (0 = train, 1 = test) exists for datasets with one (the image
    datasets, whose features are uint8 (N, C, H, W) and whose label i is the class `class_names[i]`).
    """

    name: str
    source: str
    features: np.ndarray
    labels: np.ndarray
    anomaly_labels: tuple = ()
    official_split: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # file name -> checksum, recorded in result rows

    @classmethod
    def from_arrays(cls, name: str, source: str, arrays: dict, anomaly_labels: tuple = (),
                    files: dict | None = None) -> RawDataset:
        """A dataset from a parser's (or the cache's) arrays: `features` and `labels`, and optionally
        `official_split`, `feature_names`, `class_names`."""
        return cls(
            name=name,
            source=source,
            features=arrays["features"],
            labels=arrays["labels"],
            anomaly_labels=anomaly_labels,
            official_split=arrays.get("official_split"),
            feature_names=[str(n) for n in arrays.get("feature_names", [])],
            class_names=[str(n) for n in arrays.get("class_names", [])],
            files=dict(files or {}),
        )

    @property
    def n_features(self) -> int:
        return int(np.prod(self.features.shape[1:]))

    @property
    def is_image(self) -> bool:
        return self.features.ndim == 4

    def class_index(self, value, key: str = "dataset.normal_class") -> int:
        """The class index named by `value` (`class_index`)."""
        return class_index(self.class_names, value, self.name, key)


def class_index(names, value, dataset: str, key: str = "dataset.normal_class") -> int:
    """The class index named by `value`: an index (3, or "3") or a class name ("cat"); anything else
    is a ConfigError that lists the valid choices."""
    choices = ", ".join(f"{i} ({n})" if n != str(i) else n for i, n in enumerate(names))
    named = any(n != str(i) for i, n in enumerate(names))  # digit datasets: the index is the name
    if not names:
        raise ConfigError(f"{dataset} has no classes to pick a normal class from: set {key}=null")
    if value is None:
        raise ConfigError(f"{key} is not set and this protocol needs a class of {dataset}: "
                          f"choose one of {choices}")
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not a class of {dataset}: choose one of {choices}")
    if isinstance(value, (int, np.integer)):
        if 0 <= int(value) < len(names):
            return int(value)
    else:
        text = str(value).strip()
        if text in names:
            return names.index(text)
        lowered = [n.lower() for n in names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
            return int(text)
    how = f"an index 0..{len(names) - 1} or a name: " if named else ""
    raise ConfigError(f"{key}={value!r} is not a class of {dataset}: choose {how or 'one of '}{choices}")

"""The published numbers of the five papers (a copy of shared/paper_tables/published.csv shipped in the
package), normalised to fractions, and the lookup that puts them beside our rows.

A published cell matches one of our rows when the dataset, the normal class (if any), the metric and
the protocol agree, and the paper's model name is one of our model's names in that paper.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PUBLISHED_CSV = Path(__file__).with_name("published.csv")

# Our model name -> the names the papers print for it.
MODEL_ALIASES: dict[str, tuple[str, ...]] = {
    "iforest": ("IF",),
    "ocsvm": ("OC-SVM", "OCSVM"),
    "kde": ("KDE",),
    "alad": ("ALAD",),
    "anogan": ("AnoGAN", "ADGAN"),
    "egbad": ("EGBAD", "BiGAN"),
    "ganomaly": ("GANomaly",),
    "skip_ganomaly": ("Skip-GANomaly",),
    "fgan": ("FGAN",),
    "memgan": ("MEMGAN",),
    "rcgan": ("RCGAN",),
    "ama": ("AMA",),
    "deep_svdd": ("DSVDD", "DeepSVDD"),
    "dcae": ("DCAE",),
    "memae": ("MEMAE",),
    "dagmm": ("DAGMM",),
    "dsebm_r": ("DSEBM-r", "DSEBM"),
    "dsebm_e": ("DSEBM-e",),
}

# Ablation and sensitivity cells are printed under their own names: (our model, the config settings a
# variant must have) -> the papers' names for it. A run whose settings (its flattened config) carry all of
# a rule's settings is compared with those cells; the first matching rule wins.
VARIANT_ALIASES: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("rcgan", {"model.params.penalty": "none"}, ("RCGAN w/o t(x)",)),
    ("rcgan", {"model.params.penalty": "normal2"}, ("RCGAN(t=N(0,2I))",)),
    ("rcgan", {"model.params.penalty": "uniform"}, ("RCGAN(t=U(-1,1))",)),
    ("rcgan", {"model.params.penalty": "normal"}, ("RCGAN with t(x)", "RCGAN(t=N(0,I))", "RCGAN")),
    # Table 3 (MNIST) varies n; on CIFAR-10 the paper's own n is 100 (Table 2), which these rules leave alone
    *[("memgan", {"dataset.name": "mnist", "model.params.n_memory": str(n)}, (f"MEMGAN(n_memory={n})",))
      for n in (25, 100, 200)],
    ("memgan", {"dataset.name": "mnist", "model.params.n_memory": "50"}, ("MEMGAN", "MEMGAN(n_memory=50)")),
    ("ama", {"model.params.mirrored": "False"}, ("AMA w/o Mirrored Wass. Loss",)),
    ("ama", {"model.params.simplex": "False"}, ("AMA w/o Simplex Interpolation",)),
    ("ama", {"model.params.atypical": "off"}, ("AMA w/o Atypical selection",)),
    ("ama", {"model.params.score": "r"}, ("AMA w/o new anomaly scoring",)),
    ("alad", {"model.params.spectral_norm": "False", "model.params.latent_discriminator": "False"},
     ("ALAD Baseline",)),
    ("alad", {"model.params.spectral_norm": "False", "model.params.latent_discriminator": "True"},
     ("ALAD Baseline + DL",)),
    ("alad", {"model.params.spectral_norm": "True", "model.params.latent_discriminator": "False"},
     ("ALAD Baseline + SN",)),
    # Table VII's anomaly scores of the full model; the default (features) is the full ALAD of the other tables
    *[("alad", {"model.params.spectral_norm": "True", "model.params.latent_discriminator": "True",
                "model.params.score": score}, (f"ALAD(score={name})",))
      for score, name in (("l1", "L1"), ("l2", "L2"), ("logits", "Logits"))],
    ("alad", {"model.params.spectral_norm": "True", "model.params.latent_discriminator": "True"},
     ("ALAD Baseline + SN + DL", "ALAD", "ALAD(score=Features)")),
]

# Where our methods come from, for the footnotes that say which of our models a paper's column holds.
CITATIONS: dict[str, str] = {
    "iforest": "Liu et al. 2008", "ocsvm": "Schölkopf et al. 2001", "alad": "Zenati et al. 2018",
    "anogan": "Schlegl et al. 2017", "egbad": "Zenati et al. 2018", "ganomaly": "Akcay et al. 2018",
    "memgan": "Yang et al. 2020", "rcgan": "Yang et al. 2020", "ama": "Somepalli et al. 2021",
    "deep_svdd": "Ruff et al. 2018", "dcae": "Masci et al. 2011", "memae": "Gong et al. 2019",
    "dagmm": "Zong et al. 2018", "dsebm_r": "Zhai et al. 2016", "dsebm_e": "Zhai et al. 2016",
}


def model_names(model: str, settings: dict[str, str] | None = None) -> tuple[str, ...]:
    """The papers' names for our model, or for the ablation variant its run `settings` (the flattened
    config, `results.tables.flatten_config`) make it."""
    settings = settings or {}
    for name, required, aliases in VARIANT_ALIASES:
        if name == model and settings and all(settings.get(k) == v for k, v in required.items()):
            return aliases
    return MODEL_ALIASES.get(model, (model,))


# The protocol behind each published table (DESIGN.md, "Evaluation protocols").
TABLE_PROTOCOLS: dict[tuple[str, str], str] = {
    ("alad", "II"): "tabular", ("alad", "IV"): "tabular", ("alad", "V"): "tabular",
    ("alad", "VII"): "tabular", ("rcgan", "1"): "tabular", ("rcgan", "3"): "tabular",
    ("rcgan", "4"): "tabular",
    ("alad", "III"): "alad_image", ("alad", "VI"): "alad_image", ("alad", "VIII"): "alad_image",
    ("memgan", "1"): "one_class", ("memgan", "2"): "one_class", ("memgan", "3"): "one_class",
    ("rcgan", "2"): "one_class", ("ama", "2"): "one_class",
    ("ama", "1"): "cross_dataset",
}


@lru_cache(maxsize=1)
def published_table() -> pd.DataFrame:
    """Every published cell, with `metric` in fractions (`f1_pct` 92.94 -> `f1` 0.9294), a `reference`
    column such as 'alad:II', and `normal_class` as our rows record it (the class index: the papers' 'cat'
    is CIFAR-10's '3'), the paper's own label kept in `class_label`."""
    frame = pd.read_csv(PUBLISHED_CSV, dtype={"table": str, "normal_class": str}, keep_default_na=False,
                        na_values={"mean": [""], "std": [""]})
    pct = frame["metric"].str.endswith("_pct")
    frame.loc[pct, "mean"] = frame.loc[pct, "mean"] / 100.0
    frame.loc[pct, "std"] = frame.loc[pct, "std"] / 100.0
    frame["metric"] = frame["metric"].str.removesuffix("_pct")
    frame["reference"] = frame["paper"] + ":" + frame["table"]
    frame["protocol"] = [TABLE_PROTOCOLS.get((p, t), "") for p, t in zip(frame["paper"], frame["table"], strict=True)]
    # cross_dataset cells (AMA Table 1) say where their anomalies came from: "anomalies from mnist"
    frame["anomaly_dataset"] = frame["note"].str.extract(r"anomalies from (\w+)", expand=False).fillna("")
    frame["class_label"] = frame["normal_class"]
    frame["normal_class"] = [_class_index(d, c) for d, c in zip(frame["dataset"], frame["normal_class"], strict=True)]
    return frame


def _class_index(dataset: str, label: str) -> str:
    """A paper's class label as our rows' normal class: the index of a class name, anything else as is."""
    from ganad_bench.data.image_sources import CLASS_NAMES

    names = list(CLASS_NAMES.get(dataset, ()))
    return str(names.index(label)) if label in names else label


def lookup(model: str, dataset: str, metric: str, protocol: str, normal_class=None,
           references: list[str] | None = None, anomaly_dataset: str | None = None,
           settings: dict[str, str] | None = None) -> dict | None:
    """The first published cell for our (model, dataset, class, metric) under `protocol`, trying the
    tables in `references` order (default: every table of that protocol, in file order). Under
    `cross_dataset` the anomaly dataset must match too."""
    frame = published_table()
    names = model_names(model, settings)
    cls = "" if normal_class is None else str(normal_class)
    hits = frame[(frame["model"].isin(names)) & (frame["dataset"] == dataset) & (frame["metric"] == metric)
                 & (frame["protocol"] == protocol) & (frame["normal_class"] == cls)
                 & (frame["anomaly_dataset"] == (anomaly_dataset or ""))]
    if references:
        hits = hits[hits["reference"].isin(references)]
        hits = hits.assign(_rank=hits["reference"].map(references.index)).sort_values("_rank", kind="stable")
    if hits.empty:
        return None
    first = hits.iloc[0]
    return {"reference": first["reference"], "model": first["model"], "mean": float(first["mean"]),
            "std": None if pd.isna(first["std"]) else float(first["std"])}

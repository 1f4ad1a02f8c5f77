"""Aggregation of rows into the papers' tables, with the published numbers beside ours."""

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ganad_bench.results.published import lookup, published_table
from ganad_bench.results.tables import (
    console_table,
    one_line_per_model,
    pivot,
    rows_frame,
    summarize,
    to_latex,
    to_markdown,
)

COMMITTED_ROWS = Path(__file__).resolve().parents[1] / "campaign" / "results"


def row(model, dataset, seed, protocol="tabular", normal_class=None, status="ok", config=None, **metrics):
    return {"model": model, "dataset": dataset, "seed": seed, "protocol": protocol,
            "normal_class": normal_class, "status": status, "metrics": metrics,
            "config": config or {"seed": seed, "model": {"name": model}}}


def test_published_numbers_are_fractions_with_references():
    frame = published_table()
    assert (frame["metric"].str.endswith("_pct")).sum() == 0
    hit = lookup("iforest", "kdd99", "f1", "tabular")
    assert hit == {"reference": "alad:II", "model": "IF", "mean": 0.9294, "std": None}
    assert lookup("iforest", "thyroid", "f1", "tabular")["mean"] == pytest.approx(0.7027)
    assert lookup("iforest", "kdd99", "f1", "tabular", references=["rcgan:1"])["reference"] == "rcgan:1"
    assert lookup("ocsvm", "mnist", "auroc", "one_class", normal_class=0)["mean"] == pytest.approx(0.986)
    assert lookup("iforest", "kdd99", "f1", "one_class") is None


def test_mean_std_over_seeds_and_difference():
    rows = [row("iforest", "kdd99", s, f1=v) for s, v in enumerate([0.90, 0.92, 0.94])]
    rows.append(row("iforest", "kdd99", 9, status="failed", f1=0.0))  # ignored
    long = summarize(rows_frame(rows), ["f1"])
    (cell,) = long.to_dict("records")
    assert cell["mean"] == pytest.approx(0.92) and cell["std"] == pytest.approx(0.02) and cell["n_seeds"] == 3
    assert cell["published"] == pytest.approx(0.9294) and cell["diff"] == pytest.approx(0.92 - 0.9294)


def test_classwise_rows_get_the_average_row():
    rows = [row("ocsvm", "mnist", s, "one_class", c, auroc=0.9 + 0.01 * c) for c in range(10) for s in (0, 1)]
    long = summarize(rows_frame(rows), ["auroc"])
    assert list(long["normal_class"]) == [*map(str, range(10)), "average"]
    average = long[long["normal_class"] == "average"].iloc[0]
    assert average["mean"] == pytest.approx(0.945)
    assert average["reference"] == "memgan:1"
    table = pivot(long, "auroc", "one_class")
    assert list(table.columns) == ["dataset", "class", "ocsvm", "ocsvm pub", "ocsvm Δ"]
    assert table.iloc[0]["ocsvm pub"] == "98.60"


def test_leave_one_class_out_rows_are_cells_of_their_own_with_nothing_published_beside_them():
    rows = [row("fgan", "mnist", 0, "leave_one_class_out", f"all-but-{c}", auroc=0.5 + 0.01 * c) for c in range(10)]
    rows += [row("fgan", "mnist", 0, "one_class", c, auroc=0.9) for c in range(10)]
    long = summarize(rows_frame(rows), ["auroc"])
    out = long[long["protocol"] == "leave_one_class_out"]
    assert list(out["normal_class"]) == [*(f"all-but-{c}" for c in range(10)), "average"]
    assert out["mean"].tolist()[-1] == pytest.approx(0.545) and out["published"].isna().all()
    assert long[long["protocol"] == "one_class"]["mean"].tolist() == pytest.approx([0.9] * 11)


def test_a_partial_class_set_has_a_labelled_average_with_nothing_published_beside_it():
    rows = [row("ocsvm", "mnist", 0, "one_class", c, auroc=0.9) for c in (0, 1)]
    long = summarize(rows_frame(rows), ["auroc"])
    average = long.iloc[-1]
    assert average["normal_class"] == "average (2 of 10 classes)" and math.isnan(average["published"])
    assert pivot(long, "auroc", "one_class").iloc[0]["ocsvm"] == "90.00 (n=1)"  # one seed: no "± 0.00"


def test_an_unknown_reference_table_is_a_one_line_error(tmp_path, capsys):
    from ganad_bench.cli import table_main

    with pytest.raises(SystemExit) as exit_:
        table_main([str(tmp_path), "--reference", "memgan:9"])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no published table memgan:9: choose one of alad:II")


@pytest.mark.parametrize("given", ["file", "missing"])
def test_a_folder_that_is_no_folder_is_a_one_line_error(given, tmp_path, capsys):
    from ganad_bench.cli import table_main

    path = tmp_path / "result.json"
    if given == "file":
        path.write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        table_main([str(path)])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    expected = (f"error: not a folder: {path} (give the folder of the rows, e.g. outputs/results)" if given == "file"
                else f"error: no such folder: {path} (run ganad-bench first)")
    assert line == expected


def test_unpublished_cells_stay_empty():
    long = summarize(rows_frame([row("kde", "kdd99", 0, f1=0.5)]), ["f1"])
    assert math.isnan(long.iloc[0]["published"])
    assert pivot(long, "f1", "tabular").iloc[0]["kde pub"] == ""


def test_renderers_escape_and_align():
    table = pd.DataFrame([{"dataset": "kdd_99", "class": "-", "iforest": "92.00 ± 1.00"}])
    assert to_markdown(table).splitlines()[1] == "|---|---|---:|"
    latex = to_latex(table, "F1 (%)")
    assert r"kdd\_99" in latex and r"$\pm$" in latex and r"F1 (\%)" in latex


def test_runs_with_different_settings_are_not_averaged_together():
    rows = [row("ocsvm", "thyroid", s, config={"seed": s, "dataset": {"scaler": scaler}}, f1=value)
            for s in (0, 1) for scaler, value in (("none", 0.3), ("minmax", 0.5))]
    long = summarize(rows_frame(rows), ["f1"])
    assert sorted(zip(long["variant"], long["mean"], strict=True)) == [
        ("dataset.scaler=minmax", pytest.approx(0.5)), ("dataset.scaler=none", pytest.approx(0.3))]
    assert list(long["published"]) == [pytest.approx(0.3887)] * 2  # both compare with the paper's OC-SVM
    table = pivot(long, "f1", "tabular")
    assert "ocsvm[dataset.scaler=none]" in table.columns


def test_a_classic_detectors_trainer_settings_do_not_make_a_variant():
    """Isolation Forest ignores the trainer and its folder hash leaves it out: rows whose trainer.epochs differ
    (the command line set it for a sweep of deep and classic models) are told apart by what they ran with only;
    a deep model's trainer settings stay a variant."""
    from ganad_bench.results.store import config_hash

    def hashed(model, seed, epochs, contamination, deep):
        config = {"seed": seed, "model": {"name": model}, "trainer": {"epochs": epochs},
                  "protocol": {"name": "tabular", "contamination": contamination}}
        return {**row(model, "thyroid", seed, config=config, f1=0.5),
                "config_hash": config_hash(config, trains_networks=deep)}

    classic = [hashed("iforest", 0, 0, 0.025, False), hashed("iforest", 0, 100, 0.5, False)]
    deep = [hashed("dagmm", 0, 0, 0.025, True), hashed("dagmm", 0, 100, 0.025, True)]
    frame = rows_frame(classic + deep)
    assert list(frame["variant"]) == ["protocol.contamination=0.025", "protocol.contamination=0.5",
                                      "trainer.epochs=0", "trainer.epochs=100"]


def test_packaged_published_table_equals_the_shared_one():
    from pathlib import Path

    from ganad_bench.results.published import PUBLISHED_CSV

    shared = Path(__file__).resolve().parents[2] / "shared" / "paper_tables" / "published.csv"
    if not shared.is_file():
        pytest.skip("../shared/paper_tables/published.csv is absent")
    assert PUBLISHED_CSV.read_bytes() == shared.read_bytes()


def test_cross_dataset_cells_match_their_anomaly_source():
    mnist = lookup("ama", "fashion_mnist", "auroc", "cross_dataset", anomaly_dataset="mnist")
    omniglot = lookup("ama", "fashion_mnist", "auroc", "cross_dataset", anomaly_dataset="omniglot")
    assert mnist["reference"] == omniglot["reference"] == "ama:1" and mnist["mean"] != omniglot["mean"]
    assert lookup("ama", "fashion_mnist", "auroc", "cross_dataset") is None
    rows = [{**row("iforest", "fashion_mnist", s, "cross_dataset", auroc=0.7), "anomaly_dataset": "mnist"}
            for s in (0, 1)]
    table = pivot(summarize(rows_frame(rows), ["auroc"]), "auroc", "cross_dataset")
    assert table.iloc[0]["dataset"] == "fashion_mnist vs mnist"


def test_ablation_variants_are_compared_with_their_own_published_cells():
    from ganad_bench.results.published import lookup, model_names

    assert model_names("rcgan", {"model.params.penalty": "none"}) == ("RCGAN w/o t(x)",)
    assert model_names("rcgan") == ("RCGAN",)
    without_t = lookup("rcgan", "thyroid", "f1", "tabular", settings={"model.params.penalty": "none"})
    assert without_t["reference"] == "rcgan:3" and without_t["mean"] == pytest.approx(0.6494)
    uniform = lookup("rcgan", "kdd99", "f1", "tabular", settings={"model.params.penalty": "uniform"})
    assert uniform["reference"] == "rcgan:4" and uniform["mean"] == pytest.approx(0.9460)
    memory = lookup("memgan", "mnist", "auroc", "one_class", normal_class="5",
                    settings={"dataset.name": "mnist", "model.params.n_memory": "200"})
    assert memory["reference"] == "memgan:3" and memory["mean"] == pytest.approx(0.937)
    baseline = lookup("alad", "kdd99", "f1", "tabular", settings={"model.params.spectral_norm": "False",
                                                                  "model.params.latent_discriminator": "False"})
    assert baseline["reference"] == "alad:V" and baseline["model"] == "ALAD Baseline"


def test_the_default_variant_falls_back_to_the_main_table():
    from ganad_bench.results.published import lookup

    default_n = {"dataset.name": "mnist", "model.params.n_memory": "50"}
    cell = lookup("memgan", "mnist", "auroc", "one_class", normal_class="2", settings=default_n)
    assert cell["reference"] == "memgan:1" and cell["mean"] == pytest.approx(0.945)
    assert lookup("memgan", "mnist", "auroc", "one_class", normal_class="2",
                  settings={**default_n, "model.params.n_memory": "25"}) is None  # Table 3: classes 0, 1, 5 only


def test_a_protocol_key_added_later_at_its_default_is_not_a_variant():
    """Rows from before `protocol.train_anomalies` existed and rows with its default are one cell;
    `keep` is a variant of its own."""
    before = [row("ocsvm", "kdd99", s, f1=0.8, config={"seed": s, "protocol": {"name": "tabular"}}) for s in (0, 1)]
    after = [row("ocsvm", "kdd99", s, f1=0.8, config={"seed": s, "protocol": {"name": "tabular",
                                                                           "train_anomalies": "drop"}})
             for s in (2, 3)]
    kept = [row("ocsvm", "kdd99", 4, f1=0.1, config={"seed": 4, "protocol": {"name": "tabular",
                                                                         "train_anomalies": "keep"}})]
    assert set(rows_frame(before + after)["variant"]) == {""}
    frame = rows_frame(before + after + kept)
    assert list(frame["variant"]) == ["protocol.train_anomalies=drop"] * 4 + ["protocol.train_anomalies=keep"]


def test_a_pivot_too_wide_for_the_screen_prints_one_line_per_model():
    from rich.console import Console

    rows = [row("ocsvm", "thyroid", s, config={"seed": s, "model": {"name": "ocsvm", "params": {"nu": nu}}},
                f1=0.5 + nu) for nu in [0.01 * i for i in range(1, 31)] for s in (0, 1)]
    long = summarize(rows_frame(rows), ["f1"])
    narrow = Console(width=100, file=None)
    table = console_table(long, "f1", "tabular", narrow)  # 30 variants x 3 columns: no pivot fits 100 columns
    assert [c.header for c in table.columns] == ["dataset", "class", "model", "ours", "pub", "Δ"]
    assert table.row_count == 30
    lines = one_line_per_model(long, "f1", "tabular")
    first = lines.iloc[0]
    assert (first["model"], first["ours"], first["pub"]) == ("ocsvm[model.params.nu=0.01]", "51.00 ± 0.00", "38.87")
    assert first["Δ"] == f"{100 * (0.51 - 0.3887):+.2f}"
    few = summarize(rows_frame([r for r in rows if r["config"]["model"]["params"]["nu"] == 0.01]), ["f1"])
    assert [c.header for c in console_table(few, "f1", "tabular", narrow).columns] == list(
        pivot(few, "f1", "tabular").columns)  # one model fits: the pivot


def test_a_folder_of_tabular_and_image_rows_shows_each_protocol_with_its_papers_metric(tmp_path, capsys):
    from ganad_bench.cli import table_main

    tabular = next((COMMITTED_ROWS / "thyroid" / "tabular" / "iforest" / "all").glob("seed*/result.json"), None)
    image = next((COMMITTED_ROWS / "mnist" / "one_class" / "ocsvm" / "class0").glob("seed*/result.json"), None)
    if tabular is None or image is None:
        pytest.skip("the committed campaign rows are absent")
    for source in (tabular, image):
        target = tmp_path / "rows" / source.relative_to(COMMITTED_ROWS)
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    table_main([str(tmp_path / "rows"), "--out", str(tmp_path / "t")])
    out, err = capsys.readouterr()
    assert "F1 (%) · tabular" in out and "AUROC (%) · one_class" in out  # F1 alone used to hide the image rows
    assert {p.name for p in tmp_path.glob("t_*.md")} == {"t_tabular_f1.md", "t_tabular_precision.md",
                                                         "t_tabular_recall.md", "t_one_class_auroc.md"}
    table_main([str(tmp_path / "rows"), "--metric", "auroc", "--out", str(tmp_path / "a")])
    out, _ = capsys.readouterr()
    assert "AUROC (%) · tabular" in out and "AUROC (%) · one_class" in out


def test_runs_that_did_not_finish_are_named_in_one_warning(tmp_path, capsys):
    """A cell's mean is over its finished runs: diverged and failed ones are said in one warning (count, kinds,
    the first run and its error), not left to be read off a smaller n."""
    import json

    from ganad_bench.cli import table_main

    source = next((COMMITTED_ROWS / "thyroid" / "tabular" / "iforest" / "all").glob("seed*/result.json"), None)
    if source is None:
        pytest.skip("the committed campaign rows are absent")
    target = tmp_path / "rows" / source.relative_to(COMMITTED_ROWS)
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    for seed, status in ((3, "diverged"), (4, "failed")):
        bad = {**json.loads(source.read_text()), "status": status, "model": "dagmm", "seed": seed,
               "config_hash": f"h{seed}", "error": "the loss became nan at epoch 2\nframe #0: c10::Error"}
        folder = tmp_path / "rows" / "thyroid" / "tabular" / "dagmm" / "all" / f"seed{seed}-h{seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(bad))
    table_main([str(tmp_path / "rows"), "--out", str(tmp_path / "t")])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert warnings == ["warning: 2 run(s) did not finish (1 diverged, 1 failed) and are not in the means, e.g. "
                        "dagmm · thyroid · seed 3: the loss became nan at epoch 2 (rerunning their command retries "
                        "them)"], warnings

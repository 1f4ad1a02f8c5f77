"""One published table in the paper's layout (`ganad-bench-table --paper`), and `ganad-bench-paper`: the
experiment behind a table, its finished and missing runs."""

import math

import pandas as pd
import pytest

from ganad_bench.cli import paper_main, table_main
from ganad_bench.results import paper, reproduction, run_times
from ganad_bench.results.published import lookup, model_names
from ganad_bench.results.tables import rows_frame, to_latex

MEMGAN_1 = ["OCSVM", "DCAE", "IF", "ADGAN", "KDE", "DSVDD", "MEMAE", "MEMGAN"]


def row(model, dataset, seed, protocol="one_class", normal_class=None, config=None, **metrics):
    return {"model": model, "dataset": dataset, "seed": seed, "protocol": protocol, "normal_class": normal_class,
            "status": "ok", "metrics": metrics, "config": config or {"seed": seed, "model": {"name": model}}}


def anogan_on_every_digit(seeds=(0, 1)):
    return [row("anogan", "mnist", s, normal_class=c, auroc=0.90 + 0.01 * c + 0.002 * s) for c in range(10)
            for s in seeds]


def memgan_rows(classes, seeds=(0,), epochs=7, width=128, n_memory=50):
    config = {"model": {"name": "memgan", "params": {"width": width, "n_memory": n_memory,
                                                      "batchnorm_stats": "scoring_path"}},
              "trainer": {"epochs": epochs}}
    return [row("memgan", "mnist", s, normal_class=c, config={**config, "seed": s}, auroc=0.8)
            for c in classes for s in seeds]


def line(table, dataset, label):
    return table[(table.iloc[:, 0] == dataset) & (table.iloc[:, 1] == label)].iloc[0]


def test_paper_layout_has_every_published_column_with_ours_beside_it():
    cells = paper.paper_cells(rows_frame(anogan_on_every_digit()), "memgan:1")
    table = paper.paper_pivot(cells)
    assert list(table.columns[:2]) == ["dataset", "class"]
    assert list(table.columns[2:]) == [f"{m} {part}" for m in MEMGAN_1 for part in ("ours", "pub", "Δ")]
    assert list(table["class"]) == [*map(str, range(10)), "average"]
    zero = line(table, "mnist", "0")
    assert zero["ADGAN ours"] == "90.10 ± 0.14 (n=2)" and zero["ADGAN pub"] == "96.60 ± 1.30"
    assert zero["ADGAN Δ"] == "-6.50" and zero["IF ours"] == "" and zero["IF pub"] == "98.00 ± 0.30"
    average = line(table, "mnist", "average")
    assert average["ADGAN ours"].startswith("94.60 ± 3.03") and average["ADGAN Δ"] == "+3.20"
    notes = paper.footnotes(cells)
    assert "ADGAN: our anogan (Schlegl et al. 2017)" in notes
    assert "published only (no run of ours): OCSVM, DCAE, IF, KDE, DSVDD, MEMAE, MEMGAN" in notes


def test_a_paper_table_wider_than_the_screen_prints_one_cell_per_line():
    from rich.console import Console

    from ganad_bench.results.tables import fitting

    cells = paper.paper_cells(rows_frame(anogan_on_every_digit()), "memgan:1")
    lines = paper.paper_lines(cells)
    assert list(lines.columns) == ["dataset", "class", "model", "ours", "pub", "Δ"]
    assert len(lines) == len(cells) == 11 * len(MEMGAN_1)  # every published cell, ours or not
    zero = lines[(lines["class"] == "0") & (lines["model"] == "ADGAN")].iloc[0]
    assert (zero["ours"], zero["pub"], zero["Δ"]) == ("90.10 ± 0.14 (n=2)", "96.60 ± 1.30", "-6.50")
    narrow, wide = Console(width=120), Console(width=10_000)
    pivot = paper.paper_pivot(cells)
    assert [c.header for c in fitting(narrow, "t", pivot, lambda: lines).columns] == list(lines.columns)
    assert [c.header for c in fitting(wide, "t", pivot, lambda: lines).columns] == list(pivot.columns)
    tabular = paper.paper_lines(paper.paper_cells(rows_frame([row("iforest", "kdd99", 0, "tabular", f1=0.9)]),
                                                  "alad:II"))
    assert list(tabular.columns[:3]) == ["dataset", "model", "metric"]
    assert tabular[(tabular["model"] == "IF") & (tabular["metric"] == "F1")].iloc[0]["ours"] == "90.00 (n=1)"


def test_multi_metric_tables_put_models_on_rows_and_one_seed_has_no_spread():
    rows = [row("iforest", "kdd99", 0, "tabular", f1=0.9, precision=0.8, recall=0.95)]
    table = paper.paper_pivot(paper.paper_cells(rows_frame(rows), "alad:II"))
    assert list(table.columns[:2]) == ["dataset", "model"] and "F1 ours" in table.columns
    assert list(table["model"][:7]) == ["OC-SVM", "IF", "DSEBM-r", "DSEBM-e", "DAGMM", "AnoGAN", "ALAD"]
    assert line(table, "kdd99", "IF")["F1 ours"] == "90.00 (n=1)"


def test_a_partial_class_set_is_labelled_and_never_compared():
    cells = paper.paper_cells(rows_frame(memgan_rows([0, 1])), "memgan:1")
    table = paper.paper_pivot(cells)
    partial = line(table, "mnist", "average (2 of 10 classes)")
    assert partial["MEMGAN ours"].startswith("80.00") and partial["MEMGAN pub"] == "" and partial["MEMGAN Δ"] == ""
    assert line(table, "mnist", "average")["MEMGAN ours"] == ""
    assert math.isnan(cells[cells["partial"] != ""]["diff"].iloc[0])


def test_runs_off_the_paper_settings_are_marked():
    rows = memgan_rows([0], epochs=2, width=16) + memgan_rows([1])
    cells = paper.paper_cells(rows_frame(rows), "memgan:1")
    table = paper.paper_pivot(cells)
    assert line(table, "mnist", "0")["MEMGAN [model.params.width=16,trainer.epochs=2] ours"].endswith("†")
    assert not line(table, "mnist", "1")["MEMGAN [model.params.width=128,trainer.epochs=7] ours"].endswith("†")
    assert "† trainer.epochs=2 (paper settings: 7), model.params.width=16 (128)" in paper.footnotes(cells)
    swept = paper.paper_cells(rows_frame(memgan_rows([0], n_memory=25)), "memgan:3")  # a value Table 3 sweeps
    assert not any(swept["differs"])


def test_latex_escapes_and_groups_the_columns_per_model():
    table = pd.DataFrame([{"dataset": "kdd_99", "class": "#1", "A&B ours": "50% ± 1 {x}†", "A&B pub": "$5~^",
                           "A&B Δ": "+1.00"}])
    latex = to_latex(table, "F1 (%) of a_b", notes=["† trainer.lr=1e-05 (paper settings: 0.0001) \\ x"])
    assert r"\multicolumn{3}{c}{A\&B}" in latex and r"\cmidrule(lr){3-5}" in latex
    assert r"ours & published & $\Delta$ \\" in latex
    assert r"kdd\_99 & \#1 & 50\% $\pm$ 1 \{x\}\dag{} & \$5\textasciitilde{}\textasciicircum{} & +1.00" in latex
    assert r"\caption{F1 (\%) of a\_b}" in latex and r"\dag{} trainer.lr=1e-05" in latex
    assert r"\textbackslash{} x" in latex


def test_files_are_written_with_a_small_png(tmp_path):
    cells = paper.paper_cells(rows_frame(anogan_on_every_digit()), "memgan:1")
    written = paper.write_paper_table(cells, tmp_path / "t", "memgan:1")
    assert [p.name for p in written] == [f"t_memgan_1.{s}" for s in ("csv", "md", "tex", "png")]
    png = written[3].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 400_000
    assert "ADGAN: our anogan" in written[1].read_text()
    assert pd.read_csv(written[0])["column"].nunique() == len(MEMGAN_1)


def test_a_chart_with_long_bar_names_keeps_its_layout_without_a_warning(tmp_path):
    """A column's settings in a bar's name (ALAD Table V's `(model.params.latent_discriminator=True,...)`) took a
    panel's whole height: matplotlib dropped the layout with a warning and cut the names. Names are cut at
    LABEL_CHARS, the figure grows with them, and the legend stands above the panels."""
    import warnings

    from ganad_bench.results import table_plots

    long = "ALAD Baseline + SN + DL (model.params.latent_discriminator=True,model.params.score=features)"
    cells = pd.DataFrame([{"group": group, "row_a": "kdd99", "row_b": name, "mean": 90.0, "std": 1.0,
                           "published": 95.0, "published_std": 0.5}
                          for group in ("Precision", "Recall", "F1") for name in ("ALAD Baseline", long)])
    assert table_plots.tick_labels(cells)[1] == f"kdd99 {long}"[:table_plots.LABEL_CHARS - 1] + "…"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = table_plots.bar_chart(cells, tmp_path / "chart.png", "ALAD Table V")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("table", ["memgan:9", "memgan:x"])  # ":x:" is printed as typed, not as rich's emoji
def test_unknown_table_is_a_one_line_error(table, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        table_main(["--paper", table, str(tmp_path)])
    assert stop.value.code == 2
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert message.startswith(f"error: no published table {table}: choose one of alad:II, ") and "ama:2" in message


def test_tables_map_to_their_experiment_configs():
    assert paper.check_reference("ALAD:ii") == "alad:II"
    assert paper.table_experiments("alad:II") == ["alad_table2"]
    assert {"ama_table2_cifar10", "ama_table2_mnist"} <= set(paper.table_experiments("ama:2"))
    assert paper.table_experiments("memgan:1") == ["memgan_table1", "memgan_table1_baselines"]
    assert paper.table_experiments("alad:IV") == []


def test_published_classes_are_our_class_indices_and_alad_scores_have_columns():
    assert lookup("memgan", "cifar10", "auroc", "one_class", normal_class=3)["mean"] == pytest.approx(0.557)  # "cat"
    full = {"model.params.spectral_norm": "True", "model.params.latent_discriminator": "True"}
    assert model_names("alad", {**full, "model.params.score": "l1"}) == ("ALAD(score=L1)",)
    assert "ALAD" in model_names("alad", {**full, "model.params.score": "features"})


def test_time_estimate_uses_finished_runs_of_the_same_model(monkeypatch):
    monkeypatch.setattr(run_times, "reference_samples", dict)  # none shipped: only the rows of this folder
    rows = [{"status": "ok", "model": "iforest", "dataset": "thyroid", "timings": {"total_s": t}} for t in (10, 30)]
    missing = [{"model": {"name": m}, "dataset": {"name": d}}
               for m, d in (("iforest", "thyroid"), ("iforest", "kdd99"), ("alad", "kdd99"))]
    text = run_times.time_estimate(missing, rows)
    assert text.startswith("about 20 s for 1 run(s), from finished runs' timings; about 20 s for 1 run(s), from "
                           "the model's runs on other datasets") and "unknown for 1 alad run(s)" in text
    assert run_times.time_estimate(missing[2:], rows).startswith("unknown")


def test_runs_under_way_are_counted_with_their_trained_epochs_and_timed_for_the_rest(tmp_path, monkeypatch):
    """A missing run with a checkpoint at epoch 25 of 100 is under way, 25% trained, and only its other 75
    epochs are timed; a run with only a stage's checkpoint (a pretraining) is under way at 0%; an unreadable
    checkpoint, or none, is not under way."""
    import torch

    from ganad_bench.results.store import trained_epochs

    monkeypatch.setattr(run_times, "reference_samples", lambda: {("alad", "kdd99"): [(100, 1000.0)]})
    folders = [tmp_path / name for name in ("half", "stage", "broken", "none")]
    for folder in folders:
        (folder / "checkpoints" / "pretrain").mkdir(parents=True)
    torch.save({"epoch": 25, "weights": torch.zeros(3)}, folders[0] / "checkpoints" / "last.pt")
    torch.save({"epoch": 4}, folders[1] / "checkpoints" / "pretrain" / "last.pt")
    (folders[2] / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    trained = [trained_epochs(folder) for folder in folders]
    assert trained == [25, 0, None, None]
    configs = [{"model": {"name": "alad"}, "dataset": {"name": "kdd99"}, "trainer": {"epochs": 100}}] * 4
    assert paper.under_way(trained, configs) == " (2 under way, 12% of their epochs trained)"
    assert paper.under_way([None] * 4, configs) == ""
    # 0.75 + 1 + 1 + 1 runs of 1,000 s: 3,750 s
    assert run_times.time_estimate(configs, [], "", trained).startswith("about 62 min for 4 run(s)")
    assert run_times.time_estimate(configs, []).startswith("about 67 min for 4 run(s)")


def test_a_model_new_to_a_dataset_is_timed_by_its_runs_elsewhere_scaled_by_a_peer_of_like_cost(monkeypatch):
    """RCGAN never ran on KDD99: its Thyroid runs (0.4 s an epoch) are scaled by ALAD's growth from Thyroid to
    KDD99 (0.2 s -> 50 s an epoch), the peer of nearest cost on Thyroid, not by DAGMM's (one step an epoch); a
    classic detector is scaled by classic peers only."""
    shipped = {("rcgan", "thyroid"): [(1000, 400.0)], ("alad", "thyroid"): [(100, 20.0)],
               ("alad", "kdd99"): [(100, 5000.0)], ("dagmm", "thyroid"): [(20000, 60.0)],
               ("dagmm", "kdd99"): [(200, 400.0)], ("ocsvm", "thyroid"): [(None, 0.1)],
               ("ocsvm", "kdd99"): [(None, 100.0)], ("kde", "thyroid"): [(None, 4.0)]}
    monkeypatch.setattr(run_times, "reference_samples", lambda: shipped)

    def planned(model, epochs=None):
        return {"model": {"name": model}, "dataset": {"name": "kdd99"}, "trainer": {"epochs": epochs}}

    source = "from the model's runs on another dataset, scaled by a model of like cost timed on both"
    # 400 s at 1,000 epochs -> 40 s at 100, times ALAD's 250: 10,000 s a run
    assert run_times.time_estimate([planned("rcgan", 100)] * 10, []) == f"about 27.8 h for 10 run(s), {source}"
    assert run_times.time_estimate([planned("kde")], []) == f"about 67 min for 1 run(s), {source}"  # 4 s x 1,000
    shipped.pop(("alad", "kdd99"))  # DAGMM is the only peer left: 2 s an epoch on KDD99 against 0.003 s
    assert run_times.time_estimate([planned("rcgan", 100)], []) == f"about 7.4 h for 1 run(s), {source}"
    shipped.pop(("dagmm", "kdd99"))  # no peer: unknown (a folder's own runs elsewhere would time it unscaled)
    assert run_times.time_estimate([planned("rcgan", 100)], []).startswith("unknown for 1 rcgan run(s)")


def test_time_estimate_counts_a_packs_time_once_and_a_resumed_runs_whole_training():
    """A pack's 10 members each record the pack's whole time (1,000 s): 100 s a run, not 1,000; a run resumed at
    epoch 90 of 100 recorded 10 epochs' time; a run that only scored another's networks trained nothing."""
    def row(seed, total, finished, **extra):
        return {"status": "ok", "model": "alad", "dataset": "kdd99", "timings": {"total_s": total},
                "finished_at": f"2026-12-01T10:{finished:02d}:00+00:00", "config": {"trainer": {"epochs": 100}},
                "seed": seed, **extra}

    missing = [{"model": {"name": "alad"}, "dataset": {"name": "kdd99"}}] * 10
    pack = [row(seed, 1000.0, 0) for seed in range(10)]
    assert run_times.time_estimate(missing, pack).startswith("about 17 min for 10 run(s)")  # 10 x 100 s
    resumed = [row(0, 100.0, 30, resumed_from={"epoch": 90})]  # alone: 10 x 1,000 s
    twins = [row(0, 5.0, 40, trained_by="seed0-abc"), row(1, 5.0, 50, resumed_from={"epoch": 100})]
    assert run_times.time_estimate(missing, resumed + twins).startswith("about 2.8 h for 10 run(s)")
    assert [seconds for _, seconds in run_times.run_seconds(pack + resumed + twins)] == [100.0] * 10 + [1000.0]
    # a pack whose members stopped at different times (early stopping) is known by the size its rows record
    spread = [row(seed, 1000.0, 5 * seed, pack_members=10) for seed in range(10)]
    assert [seconds for _, seconds in run_times.run_seconds(spread)] == [100.0] * 10


def test_runs_one_after_another_share_nothing_and_parallel_workers_share_the_machine():
    """Short runs one after another (OC-SVM on MNIST: 100 runs of 2 s) each cost their own time, however close
    their ends; two parallel workers each had half the machine while both ran."""
    def row(seed, total, finished_s):
        minutes, seconds = divmod(finished_s, 60)
        return {"status": "ok", "model": "ocsvm", "dataset": "mnist", "timings": {"total_s": total}, "seed": seed,
                "finished_at": f"2026-12-01T10:{minutes:02d}:{seconds:02d}+00:00"}

    in_turn = [row(seed, 2.0, 2 * seed + 2) for seed in range(100)]
    assert [seconds for _, seconds in run_times.run_seconds(in_turn)] == [2.0] * 100
    # two workers, runs of 100 s each, the second worker half a run behind the first
    workers = [row(seed, 100.0, 100 * (seed // 2 + 1) + 50 * (seed % 2)) for seed in range(10)]
    shares = [seconds for _, seconds in run_times.run_seconds(workers)]
    assert shares[1:-1] == [50.0] * 8  # the first and last ran alone half their time: 1.5 runs under way
    assert shares[0] == shares[-1] == pytest.approx(100 / 1.5)


def test_a_fresh_folder_is_timed_by_the_shipped_runs_scaled_to_the_planned_epochs(monkeypatch):
    """No finished run of ours: the project's runs of the model on the dataset time it (`run_times.csv`), a deep
    model's from the epoch count nearest the planned one, scaled to it; a classic detector's at any count."""
    shipped = {("memgan", "mnist"): [(7, 3500.0), (14, 7000.0)], ("ocsvm", "mnist"): [(None, 5.0)]}
    monkeypatch.setattr(run_times, "reference_samples", lambda: shipped)

    def planned(model, epochs):
        return {"model": {"name": model}, "dataset": {"name": "mnist"}, "trainer": {"epochs": epochs}}

    source = f"from {run_times.REFERENCE_MACHINE}"
    assert run_times.time_estimate([planned("memgan", 7)] * 10, []) == f"about 9.7 h for 10 run(s), {source}"
    assert run_times.time_estimate([planned("memgan", 2)] * 10, []) == f"about 2.8 h for 10 run(s), {source}"  # 7
    assert run_times.time_estimate([planned("memgan", 28)], []) == f"about 3.9 h for 1 run(s), {source}"  # 14
    assert run_times.time_estimate([planned("ocsvm", 2)] * 6, []) == f"about 30 s for 6 run(s), {source}"
    # a smoke run of ours (2 epochs, mostly loading and scoring) times 2 epochs, not the paper's 7, which the
    # shipped runs measured; without them it is scaled
    ours = [{"status": "ok", "model": "memgan", "dataset": "mnist", "timings": {"total_s": 600.0},
             "config": {"trainer": {"epochs": 2}}}]
    assert run_times.time_estimate([planned("memgan", 2)], ours) == "about 10 min for 1 run(s), from finished " \
                                                                      "runs' timings"
    assert run_times.time_estimate([planned("memgan", 7)], ours) == f"about 58 min for 1 run(s), {source}"
    shipped.clear()
    assert run_times.time_estimate([planned("memgan", 7)], ours) == "about 35 min for 1 run(s), from finished " \
                                                                       "runs' timings"
    assert "unknown for 1 fgan run(s)" in run_times.time_estimate([planned("fgan", 100)], [])


def test_the_shipped_run_times_are_the_ones_the_committed_rows_make(committed_rows):
    """`run_times.csv` is generated, never edited: `python scripts/run_times.py campaign/results` remakes it."""
    assert run_times.reference_csv(committed_rows) == run_times.RUN_TIMES.read_text(), \
        "ganad_bench/results/run_times.csv is not what the committed rows make: rerun " \
        "`python scripts/run_times.py campaign/results`"


def test_run_times_script_writes_nothing_from_a_missing_or_empty_folder(tmp_path):
    """`scripts/run_times.py`: a folder that is missing (bad input: the CLI's exit 2) or holds no finished run
    (exit 1) is one line, and the CSV it would write, which by default is the shipped one, is left as it was."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "times.csv"
    out.write_text("kept\n")
    (tmp_path / "empty").mkdir()
    for folder, says, status in ((tmp_path / "nope", f"error: no such folder: {tmp_path / 'nope'} (give a "
                                  "folder of finished runs", 2),
                                 (tmp_path / "empty", "error: no finished run with a run time under", 1)):
        proc = subprocess.run([sys.executable, "scripts/run_times.py", str(folder), "--out", str(out)],
                              capture_output=True, text=True, cwd=Path(__file__).parents[1])
        assert proc.returncode == status and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(says) and proc.stdout == "" and out.read_text() == "kept\n"
    shipped = run_times.RUN_TIMES.read_text()  # other runs never replace the shipped times (they did, silently)
    proc = subprocess.run([sys.executable, "scripts/run_times.py", str(tmp_path / "empty")], capture_output=True,
                          text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2 and proc.stderr.startswith("error: the shipped run_times.csv is made from the "
                                                           "project's own rows"), proc.stderr
    assert run_times.RUN_TIMES.read_text() == shipped


def test_time_estimate_takes_a_columns_measured_cost_before_another_datasets_runs():
    """AnoGAN's finished KDD99 rows (a seed of a pack: minutes) do not time its MNIST runs for MEMGAN Table 1's
    ADGAN column: run_costs.yaml's measured hours a run do; finished MNIST rows come first."""
    kdd99 = [{"status": "ok", "model": "anogan", "dataset": "kdd99", "timings": {"total_s": 600}}]
    mnist = [{"model": {"name": "anogan"}, "dataset": {"name": "mnist"}}] * 10
    cost = next(c for c in reproduction.run_costs() if "ADGAN" in c.column)
    text = run_times.time_estimate(mnist, kdd99, "memgan:1")
    assert text == f"about {cost.hours_per_run * 10:.1f} h for 10 run(s), measured on one CPU core (run_costs.yaml)"
    # a table the entry does not name: the KDD99 row, scaled to MNIST by a peer
    assert "runs on another dataset" in run_times.time_estimate(mnist, kdd99, "alad:II")
    ours = kdd99 + [{"status": "ok", "model": "anogan", "dataset": "mnist", "timings": {"total_s": 3600}}]
    assert run_times.time_estimate(mnist, ours, "memgan:1") == "about 10.0 h for 10 run(s), from finished runs' timings"


def test_paper_command_counts_finished_and_missing_runs(make_cfg, tmp_path, capsys, monkeypatch):
    from ganad_bench.run import run

    for seed in (0, 1):
        assert run(make_cfg("dataset=thyroid", f"seed={seed}"))["status"] == "ok"
    overrides = ["model=iforest", "dataset=thyroid", "seed=0,1,2", f"paths.output_dir={tmp_path / 'outputs'}"]
    paper_main(["rcgan:1", *overrides])
    captured = capsys.readouterr()
    assert "rcgan:1 · experiment=rcgan_table1: 3 run(s), 2 finished, 1 missing · about" in captured.err
    assert "ganad-bench-paper rcgan:1 --run model=iforest" in captured.err
    table = pd.read_csv(tmp_path / "outputs" / "tables" / "table_rcgan_1.csv")
    ours = table[(table["column"] == "IF") & (table["dataset"] == "thyroid")]
    assert list(ours["n_seeds"]) == [2, 2, 2]
    table_main([str(tmp_path / "outputs"), "--paper", "rcgan:1", "--out", str(tmp_path / "t")])
    assert "| thyroid | IF |" in (tmp_path / "t_rcgan_1.md").read_text()
    launched = []
    monkeypatch.setattr(paper, "launch", lambda *args: launched.append(args[:2]) or 0)
    paper_main(["rcgan:1", "--run", *overrides])
    assert launched == [("rcgan_table1", overrides)]


def test_paper_command_with_only_invalid_jobs_or_an_unwritable_out_is_a_one_line_error(tmp_path, capsys):
    outputs = f"paths.output_dir={tmp_path / 'outputs'}"
    (tmp_path / "file").write_text("")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "result.json").write_text("{}")  # a run's folder: its files are the run's
    for args, message in [(["rcgan:1", "--run", "--out", outputs], f"error: argument --out: {outputs} looks like an "
                           f"override (key=value), not a path"),  # --out took it: the runs went to ./outputs
                          (["rcgan:1", "--out", str(tmp_path / "run" / "t"), outputs],
                           f"error: --out {tmp_path / 'run' / 't'} lies in the run folder {tmp_path / 'run'}"),
                          (["rcgan:1", "--run", "seed=abc", outputs],
                           "error: every job of rcgan:1 is invalid, e.g. seed"),
                          # told against the table's model, not the default one
                          (["alad:V", "model.params.latent_dm=3", outputs], "error: every job of alad:V is invalid, "
                           "e.g. model.params.latent_dm: not a setting of model alad (did you mean latent_dim?"),
                          (["rcgan:1", "--run", "model=iforest", "dataset=thyroid", "seed=0", outputs, "--out",
                            str(tmp_path / "file" / "t")], f"error: cannot write {tmp_path / 'file' / 't'}"),
                          # the table runs its own experiments: another one was dropped without a word
                          (["rcgan:1", "--run", "experiment=alad_table2", outputs], "error: experiment=alad_table2: "
                           "rcgan:1 runs its own experiments (rcgan_table1, "),
                          (["rcgan:1", "seed=range(0,100000000)", outputs], "error: the sweep expands to 100,000,000 "
                           "jobs"),  # counted, not listed: listing them ended in a MemoryError traceback
                          (["rcgan:1", f"paths.output_dir={tmp_path / 'file' / 'o'}"],
                           "(Not a directory): choose a writable paths.output_dir (or an --out prefix)")]:
        with pytest.raises(SystemExit) as stop:
            paper_main(args)
        assert stop.value.code == 2
        printed = capsys.readouterr()
        line = printed.err.strip().splitlines()[-1]
        assert line.startswith(message) or (message.startswith("(") and message in line), line
        assert printed.out == ""  # no table before the error: the files are written first
    assert not (tmp_path / "outputs" / "results").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--paper", "memgan:1", "--metric", "f1"], "error: --metric goes without --paper, which chooses its own metrics: "
                                                "drop --metric"),
    (["--reproduction", "R.md", "--metric", "f1"], "error: --metric goes without --reproduction"),
    (["--by-anomaly-class", "--metric", "f1"], "error: --metric goes without --by-anomaly-class"),
    (["--by-anomaly-class", "--paper", "memgan:1"], "error: --paper and --by-anomaly-class are two different"),
    # --reference picks the summary table's published numbers: beside --paper it was dropped without a word
    (["--paper", "rcgan:1", "--reference", "alad:II"], "error: --reference goes with the summary table, not --paper: "
                                                       "drop --reference"),
    (["--copy-rows", "file/t", "--reference", "alad:II"], "error: --reference goes with the summary table, not "
                                                          "--copy-rows"),
    (["--reproduction", "R.md", "--copy-rows", "file/t"], "error: --reproduction and --copy-rows are two different"),
    (["--paper", "memgan:1", "--out", "file/t"], "error: cannot write {tmp}/file/t (Not a directory)")])
def test_table_command_refuses_a_metric_it_would_ignore_and_an_out_it_cannot_write(args, message, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    args = [str(tmp_path / a) if a in ("file/t", "R.md") else a for a in args]
    with pytest.raises(SystemExit) as stop:
        table_main([str(tmp_path), *args])
    assert stop.value.code == 2
    printed = capsys.readouterr()
    assert printed.err.strip().splitlines()[-1].startswith(message.format(tmp=tmp_path)) and printed.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


@pytest.mark.parametrize(("table", "message"), [
    ("memgan:9", "error: no published table memgan:9: choose one of alad:II"),
    ("memgan:x", "error: no published table memgan:x: choose one of alad:II"),
    ("alad:IV", "error: no experiment config for alad:IV: the tables with one are alad:II (alad_table2)")])
def test_paper_command_rejects_unknown_and_unsupported_tables(table, message, capsys):
    with pytest.raises(SystemExit) as stop:
        paper_main([table])
    assert stop.value.code == 2
    (line_,) = capsys.readouterr().err.strip().splitlines()
    assert line_.startswith(message)


def test_paper_command_without_a_table_names_only_the_table_as_missing(capsys):
    with pytest.raises(SystemExit) as stop:
        paper_main([])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: the following arguments are required: PAPER:TABLE (see ganad-bench-paper --help)"]

#!/usr/bin/env bash
# The reproduction campaign: the tabular tables' runs at the papers' budgets, 10 seeds, cheapest cells
# first, then REPRODUCTION.md regenerated from every finished row. Resumable: run it again and every command
# skips finished runs and resumes interrupted ones from their last checkpoint; on a new machine the runs
# whose rows are committed in ROWS are skipped too.
#
#   GANAD_DATA_DIR=../shared/data bash scripts/campaign.sh [RUNS]       # RUNS: ~/ganad-runs/campaign
#
# The runs (scores, checkpoints: up to 185 MB a run) stay in RUNS, outside the work tree; after every sweep
# their rows (result.json, a few KB each) are copied to ROWS (default: campaign/results of this checkout,
# where git keeps them and ignores everything else), and the report is made from ROWS, so that the rows
# behind REPRODUCTION.md are committed with it and survive the machine that ran them.
# STAGES (default: all, in order) picks some, e.g. STAGES="baselines rcgan-small" bash scripts/campaign.sh.
# Deep tabular runs of one configuration train as packs of 10 seeds (the default launcher); image sweeps run
# one at a time (IMAGE_PACK=1: on a CPU a pack of image networks is no faster, and a pack's runs all finish
# at its end), IMAGE_PACK=10 packs them on a GPU. A failing stage does not stop the later ones; the script
# exits 1 at the end if any failed.
set -u
RUNS=$(realpath -m "${1:-$HOME/ganad-runs/campaign}")
# paths given relative to where the script was started, before it moves to the checkout's root
[ -n "${GANAD_DATA_DIR:-}" ] && export GANAD_DATA_DIR=$(realpath -m "$GANAD_DATA_DIR")
[ -n "${ROWS:-}" ] && ROWS=$(realpath -m "$ROWS")
[ -n "${REPORT:-}" ] && REPORT=$(realpath -m "$REPORT")
cd "$(dirname "$0")/.."
ROWS=${ROWS:-campaign/results}
ALL_STAGES="baselines mnist-classic rcgan-small energy-small alad-small rcgan-ablations rcgan-arrhythmia rcgan-eq12
            alad-ablations kdd99 mnist-deep mnist-gan mnist-deep-rest mnist-gan-more ama-mnist mnist-gpu"
STAGES=${STAGES:-$ALL_STAGES}
for stage in $STAGES; do  # checked before any runs: a typo must not surface hours into the campaign
    case " $(echo $ALL_STAGES) " in
    *" $stage "*) ;;
    *) echo "campaign.sh: unknown stage '$stage'; the stages are:" $ALL_STAGES >&2; exit 2 ;;
    esac
done
COMMON=(paths.output_dir="$RUNS" plots=false trainer.progress=false)
# KDD99's deep runs: packs of 10 seeds by default (hours to a day a pack on one core); KDD99_PACK=1 trains
# each seed alone, so that a machine lent for a few hours still finishes runs, at half the throughput: on one
# thread a pack of 10 steps 1.9x (ALAD) to 2.0x (RCGAN) the rows a second of one run (`python
# scripts/pack_benchmark.py --models alad rcgan --shapes tab121 --packs 1 10 --threads 1`), and one run takes
# 1.2-2.5 h (ALAD, 50/50 split: 3,962 steps an epoch at 11-23 ms) to 2.3-6 h (RCGAN, 80/20 split: 6,352 steps
# at 13-33 ms) on a core of its own (the ranges: two 2-core machines of the kind CI runs on).
# Two campaign.sh processes side by side share the runs (each skips what the other holds).
status=0

# A run whose row is in ROWS finished on some machine: on a new one (or after RUNS was lost) its row goes into
# RUNS first, where no row of that run is yet, so that `ganad-bench` skips it instead of training it again.
# Only the row comes: a later sweep that scores such a run's networks again (Table VII, Eq. 12) retrains them.
if [ -d "$ROWS" ]; then
    (cd "$ROWS" && find . -name result.json) | while read -r row; do
        [ -e "$RUNS/results/$row" ] || install -D -m 644 "$ROWS/$row" "$RUNS/results/$row"
    done
fi

run() {  # one sweep, then its rows into ROWS; its failure is remembered, the campaign goes on
    echo "== $(date -u +%FT%TZ) ganad-bench -m $*"
    ganad-bench -m "$@" "${COMMON[@]}" || status=1
    ganad-bench-table "$RUNS/results" --copy-rows "$ROWS" || status=1
}

for stage in $STAGES; do
    case $stage in
    baselines)  # IF, OC-SVM, KDE: seconds a run, OC-SVM / KDE on KDD99 1-2 min
        run experiment=tabular_baselines hydra/launcher=joblib hydra.launcher.n_jobs=2 ;;
    mnist-classic)  # MEMGAN Table 1's IF, OC-SVM, KDE columns: 10 classes x 10 seeds, seconds to 20 s a run
        run experiment=memgan_table1_baselines model=iforest,ocsvm,kde ;;
    rcgan-small)  # RCGAN Table 1 on Thyroid and Musk: one pack of 10 seeds each
        run experiment=rcgan_table1 dataset=thyroid,musk ;;
    energy-small)  # DAGMM, DSEBM-e / -r on Arrhythmia and Thyroid
        run experiment=energy_baselines dataset=arrhythmia,thyroid ;;
    alad-small)  # ALAD Table II / RCGAN Table 1's GAN baselines on the small sets
        run experiment=alad_table2 dataset=arrhythmia
        run experiment=rcgan_table1_baselines dataset=arrhythmia,thyroid,musk ;;
    rcgan-ablations)  # RCGAN Tables 3 and 4 (their t(x)=N(0, I) runs are Table 1's)
        run experiment=rcgan_table3 dataset=thyroid
        run experiment=rcgan_table4 dataset=thyroid
        run experiment=rcgan_table3 dataset=arrhythmia ;;
    rcgan-arrhythmia)  # 1,000 epochs of 6 steps
        run experiment=rcgan_table1 dataset=arrhythmia ;;
    rcgan-eq12)  # the same trained networks scored by Eq. 12 instead of Eq. 11: scoring only, no training
        run experiment=rcgan_table1 dataset=thyroid,musk,arrhythmia model.params.score=features ;;
    alad-ablations)  # ALAD Tables V and VII on Arrhythmia
        run experiment=alad_table5 dataset=arrhythmia
        run experiment=alad_table7 dataset=arrhythmia ;;
    kdd99)  # hours a pack on one CPU core (ALAD: about 4 min an epoch for its 10 seeds, 100 epochs): run it
            # where there is time (or a GPU); a test-metric point every 10 epochs shows where each is heading
            # The energy baselines (about 1 h a pack of 10 seeds) finish within a working session; the longer
            # packs resume across sessions from their last checkpoint (every trainer.checkpoint_seconds, also
            # inside an epoch: a session's end loses about 30 s of a pack, not its 15-20 min epoch).
        run experiment=energy_baselines dataset=kdd99 trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        run experiment=alad_table2 dataset=kdd99 model=alad trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        # AnoGAN without a curve: each point is a latent search over the 247k test rows, about 20 min a seed,
        # the pack's 10 one after another (200 min a point against 50 min for 10 epochs of the pack)
        run experiment=alad_table2 dataset=kdd99 model=anogan hydra.launcher.pack_size="${KDD99_PACK:-10}"
        # Table VII scores Table II's networks: scoring only
        run experiment=alad_table7 dataset=kdd99 trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        run experiment=rcgan_table1 dataset=kdd99 trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        run experiment=rcgan_table1_baselines dataset=kdd99 model=alad,deep_svdd trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        # its ADGAN column: the same runs as Table II's AnoGAN (skipped there), without a curve
        run experiment=rcgan_table1_baselines dataset=kdd99 model=anogan hydra.launcher.pack_size="${KDD99_PACK:-10}"
        run experiment=rcgan_table4 dataset=kdd99 trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}"
        run experiment=alad_table5 dataset=kdd99 trainer.curve_every=10 hydra.launcher.pack_size="${KDD99_PACK:-10}" ;;
    mnist-deep)  # MEMGAN Table 1's DCAE, MemAE, Deep SVDD columns at their papers' budgets, seeds 0-2, cheapest
                 # model first and breadth first: seed 0 of every digit, then seeds 1-2 (seeds 3-9 in
                 # mnist-deep-rest, after MEMGAN's own column). One run at a time
                 # (IMAGE_PACK=1): on a CPU a pack of image networks is no faster than its runs one after
                 # another (docs/benchmarks/packs.md: Deep SVDD 0.73x, DCAE 0.84x); on a GPU IMAGE_PACK=10.
        for seeds in 0 1,2; do
            run experiment=memgan_table1_baselines model=dcae "seed=$seeds" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
            run experiment=memgan_table1_baselines model=memae "seed=$seeds" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
            run experiment=memgan_table1_baselines model=deep_svdd "seed=$seeds" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        done ;;
    mnist-gan)  # MEMGAN Table 1's own column at its settings (7 epochs; about 30-40 min a class-seed on one
                # core here), seed 0 of every digit, with learning curves: 10% of each class's training images
                # held out as the normal-only validation rows the curve's loss is measured on. One digit at a
                # time: a pack of the ten digits is only 1.25x faster on a CPU, and its ten rows would all come
                # at its end, after seven 70-min epochs, instead of one every 30-40 min.
        for digit in 0 1 2 3 4 5 6 7 8 9; do
            run experiment=memgan_table1 dataset.normal_class=$digit seed=0 trainer.curve_every=1 protocol.val_fraction=0.1
        done ;;
    mnist-deep-rest)  # seeds 3-9 of mnist-deep's three columns (each cell already has seeds 0-2): the last runs
                      # MEMGAN Table 1's baseline columns need for 10 seeds at their papers' budgets
        run experiment=memgan_table1_baselines model=dcae "seed=range(3,10)" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        run experiment=memgan_table1_baselines model=memae "seed=range(3,10)" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        run experiment=memgan_table1_baselines model=deep_svdd "seed=range(3,10)" hydra.launcher.pack_size="${IMAGE_PACK:-1}" ;;
    mnist-gan-more)  # MEMGAN Table 1's seeds 1-2, as mnist-gan (three seeds a digit), then Table 3 (n = 25, 100,
                     # 200 memory units on digits 0, 1, 5; n = 50 is Table 1's run, skipped) at seed 0
        run experiment=memgan_table1 seed=1,2 trainer.curve_every=1 protocol.val_fraction=0.1 hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        run experiment=memgan_table3 seed=0 trainer.curve_every=1 protocol.val_fraction=0.1 hydra.launcher.pack_size="${IMAGE_PACK:-1}" ;;
    ama-mnist)  # AMA Table 2's FGAN and Skip-GANomaly rows on MNIST at their authors' settings, seed 0 (the
                # table's one run), a test-metric point every 5 epochs. Measured on one CPU core: FGAN about
                # 14 s a pretraining and 20-30 s an adversarial epoch (15 + 100: about 50 min a digit; digit 0
                # 3,011 s with another run on the second core), Skip-GANomaly about 160 s an epoch (15: about
                # 40 min a digit). The table's AMA and ALAD rows are in mnist-gpu.
        run experiment=ama_table2_baselines model=fgan dataset=mnist trainer.curve_every=5 hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        run experiment=ama_table2_baselines model=skip_ganomaly dataset=mnist trainer.curve_every=5 hydra.launcher.pack_size="${IMAGE_PACK:-1}" ;;
    mnist-gpu)  # the MNIST columns that need a GPU: MEMGAN Table 1's ADGAN, AMA Table 2's AMA and ALAD (what a run
                # of each costs on one CPU core, measured: ganad_bench/results/run_costs.yaml, which the report
                # quotes beside these cells)
        for seeds in 0 1,2 "range(3,10)"; do
            run experiment=memgan_table1_baselines model=anogan "seed=$seeds" hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        done
        run experiment=ama_table2_mnist trainer.curve_every=5 hydra.launcher.pack_size="${IMAGE_PACK:-1}"
        run experiment=ama_table2_baselines model=alad dataset=mnist trainer.curve_every=5 hydra.launcher.pack_size="${IMAGE_PACK:-1}" ;;
    esac
done
ganad-bench-table "$ROWS" --reproduction "${REPORT:-REPRODUCTION.md}" || status=1
# the reference times ganad-bench-paper shows for a fresh output folder, from the committed rows
[ "$ROWS" = campaign/results ] && { python scripts/run_times.py "$ROWS" || status=1; }
exit $status

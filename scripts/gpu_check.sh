#!/usr/bin/env bash
# The GPU check (`make gpu-check`): the pack benchmark for ALAD, MEMGAN and AMA at the papers' widths on KDD99- and
# MNIST-shaped batches (packs of 1, 10 and 50; plain, bf16), a real packed sweep through the command line (RCGAN
# Table 1 on the embedded Thyroid file, 10 seeds, 20 epochs), the GPU tests, then the compiled variant (its
# first steps compile for minutes). Each stage has its own time limit, so that a machine lent for minutes returns
# what it measured; the benchmark keeps its finished cases and a rerun goes on with the rest.
#
#   bash scripts/gpu_check.sh [OUT]       # default outputs/gpu-check; PYTHON=... picks the interpreter
#
# Limits in seconds: GPU_CHECK_BENCH_S, GPU_CHECK_CLI_S, GPU_CHECK_TESTS_S, GPU_CHECK_COMPILE_S. A checkout runs
# without an install (PYTHONPATH=<checkout>): on a machine with torch but no network, only hydra-core, omegaconf
# and antlr4-python3-runtime need to come along (pip install --no-deps --target DIR their wheels; PYTHONPATH=DIR:.).
set -u
cd "$(dirname "$0")/.."
OUT=${1:-outputs/gpu-check}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
start=$(date +%s)
stage() { echo "[gpu-check $(( $(date +%s) - start )) s] $*"; }
bench() {  # bench SECONDS VARIANT...: the pack benchmark's cases of these variants (finished ones are kept)
    local limit=$1; shift
    timeout "$limit" "$PY" scripts/pack_benchmark.py --device "$DEVICE" --out "$OUT" --name gpu-check \
        --models alad memgan ama --shapes tab121 img1x28x28 --packs 1 10 50 --variants "$@" \
        --image-width 128 --steps 20 --warmup 3
    local rc=$?
    case $rc in
    0) ;;
    124) stage "benchmark stopped at its limit ($limit s): rerun to measure the remaining cases" ;;
    *) stage "benchmark failed (exit $rc): see its output above"; bench_failed=1 ;;
    esac
}
bench_failed=0

DEVICE=${GPU_CHECK_DEVICE:-cuda}  # cpu: a dry run of the script itself
"$PY" - "$DEVICE" <<'PROBE' || exit 2
import sys
try:
    import torch
except ImportError:
    sys.exit(f"error: {sys.executable} has no torch: PYTHON=<an interpreter with torch and CUDA>")
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(f"error: torch {torch.__version__} sees no CUDA device: the GPU check needs one")
print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name() if sys.argv[1] == "cuda" else "")
PROBE
mkdir -p "$OUT"  # after the probe: a machine that cannot run the check is left no empty output folder

stage "1/4 pack benchmark, plain and bf16"
bench "${GPU_CHECK_BENCH_S:-300}" plain bf16

stage "2/4 a packed sweep through the command line: RCGAN Table 1, Thyroid, 10 seeds, 20 epochs"
timeout "${GPU_CHECK_CLI_S:-180}" "$PY" -m ganad_bench -m experiment=rcgan_table1 dataset=thyroid 'seed=range(10)' \
    trainer.epochs=20 plots=false trainer.progress=false paths.output_dir="$OUT/runs" 2>&1 | grep -E "^(ok|error|interrupted)|pack"
cli=${PIPESTATUS[0]}

stage "3/4 GPU tests"
timeout "${GPU_CHECK_TESTS_S:-300}" "$PY" -m pytest -m gpu -p no:cacheprovider -q tests
tests=$?

stage "4/4 pack benchmark, compiled (one run: a compiled loss is compiled for one run)"
bench "${GPU_CHECK_COMPILE_S:-300}" plain bf16 compile

"$PY" scripts/pack_benchmark.py --report --device "$DEVICE" --out "$OUT" --name gpu-check
stage "done: command line rc=$cli, GPU tests rc=$tests, benchmark $([ $bench_failed -eq 0 ] && echo ok || echo failed)"
[ "$cli" -eq 0 ] && [ "$tests" -eq 0 ] && [ "$bench_failed" -eq 0 ]

#!/usr/bin/env bash
# Every GPU benchmark in one command, for the device tool: results as JSON under $OUT (default ./gpu-results).
# Budget: under 8 minutes on one H100. Run from the repository root after `pip install -e '.[test]'`.
# DRY_RUN=1 runs the same steps on the CPU with the tiny backbone and one iteration each, to check the script.
set -uo pipefail
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
if [ "${DRY_RUN:-0}" = 1 ]; then
    DEV="--device cpu"; DT="--dtype fp32"; SMALL="--backbone tiny_clip"; IT="--warmup 1 --iters 1"; AMP=none; DEVNAME=cpu
else
    DEV="--device cuda"; DT="--dtype bf16"; SMALL=""; IT=""; AMP=bf16; DEVNAME=cuda
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
fi
status=0
run() { echo "+ $*"; "$@" || { echo "FAILED: $*"; status=1; }; }
run python -m pytest -q -m gpu tests/test_gpu.py
run python benchmarks/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 8 32 --out "$OUT/vs_baseline.json"
run python benchmarks/vs_baseline.py $DEV $DT $SMALL --frames 16 32 --batch 8 --warmup 1 --iters 3 \
    --out "$OUT/vs_baseline_frames.json"
run python benchmarks/model_step.py $DEV $DT $SMALL $IT --frames 8 16 32 --batch 8 32 --out "$OUT/model_step.json"
run python benchmarks/model_step.py $DEV $DT $SMALL $IT --frames 8 --batch 8 --grad-checkpointing \
    --out "$OUT/model_step_ckpt.json"
if [ "${DRY_RUN:-0}" != 1 ]; then
    run python benchmarks/model_step.py $DEV $DT --preset k400_vitl14_8f --frames 8 --batch 8 --warmup 2 --iters 5 \
        --out "$OUT/model_step_vitl14.json"
fi
run python benchmarks/train_pipeline.py --preset k400_vitb16_8f --synthetic-size 256 --clips-per-class 24 --batch 8 \
    --workers 12 --device "$DEVNAME" --amp "$AMP" --epochs 1 --steps "${PIPELINE_STEPS:-30}" \
    --out "$OUT/train_pipeline_gpu.json"
ls -la "$OUT"
exit $status

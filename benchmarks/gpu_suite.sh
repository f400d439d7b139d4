#!/usr/bin/env bash
# Every GPU benchmark in one command, for the device tool: results as JSON under $OUT (default ./gpu-results).
# Budget: under 8 minutes on one H100. Run from the repository root after `pip install -e .`.
set -uo pipefail
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python -m pytest -q -m gpu tests/test_gpu.py > "$OUT/gpu_tests.txt" 2>&1
python benchmarks/vs_baseline.py --device cuda --dtype bf16 --frames 8 --batch 8 32 --out "$OUT/vs_baseline_bf16.json"
python benchmarks/vs_baseline.py --device cuda --dtype bf16 --frames 16 32 --batch 8 --iters 3 --out "$OUT/vs_baseline_frames.json"
python benchmarks/model_step.py --device cuda --dtype bf16 --frames 8 16 32 --batch 8 32 --warmup 2 --iters 5 \
    --out "$OUT/model_step.json"
python benchmarks/model_step.py --device cuda --dtype bf16 --frames 8 --batch 8 --grad-checkpointing \
    --out "$OUT/model_step_ckpt.json"
python benchmarks/model_step.py --device cuda --dtype bf16 --preset k400_vitl14_8f --frames 8 --batch 8 \
    --out "$OUT/model_step_vitl14.json"
python benchmarks/train_pipeline.py --preset k400_vitb16_8f --synthetic-size 256 --clips-per-class 24 --batch 8 \
    --workers 12 --device cuda --amp bf16 --epochs 1 --steps 30 --out "$OUT/train_pipeline_gpu.json"
ls -la "$OUT"

#!/usr/bin/env bash
# Every GPU benchmark of docs/benchmarks.md in one command, sized for under 8 minutes on one H100 or H200 (compile
# steps have their own time limits; by the step times measured on an H200 with 16 CPU cores, 2026-11-27, the default
# steps add up to about 7.3 minutes, the optional ones to about 8 more). Run from the repository root:
#     OUT=gpu-results bash benchmarks/gpu/suite.sh                 # on the GPU machine; results under $OUT
#     DRY_RUN=1 PIPELINE_STEPS=1 bash benchmarks/gpu/suite.sh       # the same steps on a CPU, tiny backbone
#     ONLY="tests compile" OUT=gpu-results bash benchmarks/gpu/suite.sh   # only the named steps (names: `step` below)
# On a GPU machine that has PyTorch but neither PyAV nor network access, the script installs wheels found in .whl/
# (download them elsewhere with `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12
# --implementation cp --platform manylinux_2_28_x86_64 -d .whl av==18.1.0` and copy .whl/ into the checkout); it
# runs vidapter from the checkout. Results: every JSON and the log go to a work folder, packed after each step into
# $OUT/gpu_results.tar.gz (one file, read by benchmarks/gpu/summarize.py), so a run cut off at a time limit still
# leaves what it finished.
set -uo pipefail
OUT="${OUT:-gpu-results}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/vidapter-gpu-XXXX)"
mkdir -p "$OUT"
exec > >(tee "$WORK/suite.log") 2>&1
save() { tar czf "$OUT/gpu_results.tar.gz" -C "$WORK" . 2>/dev/null; }

if ! "$PY" -c "import av" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/vidapter-site .whl/*.whl
    export PYTHONPATH="/tmp/vidapter-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's vidapter, installed or not
"$PY" -c "import av, torch, vidapter; print('torch', torch.__version__, 'av', av.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "FAILED: vidapter's dependencies are not importable"; save; exit 1; }

if [ "${DRY_RUN:-0}" = 1 ]; then
    DEV="--device cpu"; DT="--dtype fp32"; SMALL="--backbone tiny_clip"; IT="--warmup 1 --iters 1"; AMP=none; DEVNAME=cpu
    LEVERS="baseline vidapter recompute-none recompute-mlp checkpoint no-temporal"; COMPILE_LIMIT=300
    LOADER_WORKERS="1 2"; PACKED_WORKERS="1 2"; PIPE="--preset synthetic --synthetic-size 32 --batch 8 --workers 2 --compile false"
else
    DEV="--device cuda"; DT="--dtype bf16"; SMALL=""; IT=""; AMP=bf16; DEVNAME=cuda
    LEVERS="${LEVERS:-baseline vidapter recompute-none recompute-mlp checkpoint bf16-frozen temporal-sdpa cudagraph no-temporal}"
    COMPILE_LIMIT=240; LOADER_WORKERS="${LOADER_WORKERS:-8 15}"; PACKED_WORKERS="${PACKED_WORKERS:-4 8 15}"
    PIPE="--preset k400_vitb16_8f --synthetic-size 256 --batch 32 --workers 15 --compile true"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$WORK/gpu.csv" 2>&1
fi
status=0
OPTIONAL="profile model_step compile_graphs compile_levers compile_autotune temporal_attention storage stages loader_packed pipeline_packed"  # steps that run only when $ONLY names them (the suite: < 8 min)
step() {  # step NAME COMMAND...: runs COMMAND unless $ONLY is set and does not name NAME
    local name="$1"; shift
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    if [ -z "${ONLY:-}" ] && [[ " $OPTIONAL " == *" $name "* ]]; then return; fi
    echo "+ [$name $(date +%T)] $*"; "$@" || { echo "FAILED ($?): $*"; status=1; }; save
}
M="$PY benchmarks/model"; D="$PY benchmarks/data"  # the model and the data benchmarks
step tests "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
# every method at ViT-B/16, T=8: train step, memory, inference before and after merging (one process, side by side)
step methods timeout 150 $M/methods.py $DEV $DT $SMALL $IT --batch 16 --out "$WORK/methods.json"
# AIM on every image family at base size beside CLIP ViT-B/16, T=8: train step, peak memory (one process)
step backbones timeout 150 $M/backbones.py $DEV $DT $IT --batch 16 $( [ "${DRY_RUN:-0}" = 1 ] && echo --tiny ) \
    --out "$WORK/backbones.json"
# recompute modes vs plain autograd, gradient bit-identity per SDPA backend (explains the test's choice of backend)
step identity $M/recompute_identity.py $DEV $( [ "${DRY_RUN:-0}" = 1 ] && echo --backbones tiny_clip ) \
    --out "$WORK/recompute_identity.json"
# the side-by-side comparison and every eager lever, T=8, batch 8 and 32
step levers $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 8 32 --variants $LEVERS --profile \
    --out "$WORK/vs_baseline.json"
# where the step's time goes by kernel kind and how busy the GPU is kept, batch 32 and 8 (optional: the levers step's
# --profile gives the same split for every variant)
step profile $M/profile_step.py $DEV $SMALL --batch 32 --variants baseline vidapter recompute-none --out "$WORK/profile_step.json"
step profile $M/profile_step.py $DEV $SMALL --batch 8 --variants baseline vidapter recompute-none --out "$WORK/profile_step_b8.json"
# scaling in T (the paper's 606 / 1214 / 2428 GFLOPs per 3 views) for both designs, and the temporal pass's price
step frames $M/vs_baseline.py $DEV $DT $SMALL --frames 16 32 --batch 8 --warmup 1 --iters 3 \
    --variants baseline vidapter no-temporal --out "$WORK/vs_baseline_frames.json"
# batch 32 at T=16 and 32 (the rows vs_baseline does not cover; T=8 and batch 8 are there); optional: ONLY=model_step
step model_step $M/model_step.py $DEV $DT $SMALL $IT --frames 16 32 --batch 32 --out "$WORK/model_step.json"
if [ "${DRY_RUN:-0}" != 1 ]; then
    step vitl14 $M/model_step.py $DEV $DT --preset k400_vitl14_8f --frames 8 --batch 8 --warmup 2 --iters 5 \
        --out "$WORK/model_step_vitl14.json"
fi
# feeding the GPU: how many cores the machine really gives, what the loader alone delivers by worker count (Kinetics-like 340x256 videos), then the full
# pipeline (decode + augment in 12 loader workers feeding the model, 128-frame synthetic videos) with its data wait
step cpu $D/cpu_scaling.py --procs 1 2 4 8 16 --out "$WORK/cpu_scaling.json"
step loader $D/loader_throughput.py --workers $LOADER_WORKERS --batches "${LOADER_BATCHES:-30}" --out "$WORK/loader_throughput.json"
step pipeline $D/train_pipeline.py --preset k400_vitb16_8f --synthetic-size 256 --clips-per-class 24 --frames-per-video 128 \
    --batch 8 --workers 12 --device "$DEVNAME" --amp "$AMP" --epochs 1 --steps "${PIPELINE_STEPS:-30}" \
    --out "$WORK/train_pipeline_gpu.json"
# training-ready storage (ONLY="storage stages loader_packed pipeline_packed", about 6 min): the layouts' CPU rates on
# this host, the loader's stages with pinned memory, the host-to-device copy and nvJPEG, the loader by workers from
# sparse-packed files, and `vidapter train` (compiled, batch 32) from sparse-packed files with its data wait, to set
# beside the model-only compiled step of `compile`
step storage $D/storage_layouts.py --videos $( [ "${DRY_RUN:-0}" = 1 ] && echo 2 || echo 12 ) --repeats 1 --sizes 256 --layouts sparse jpeg --sparse-crfs \
    --out "$WORK/storage_layouts.json"
step stages $D/loader_stages.py --out "$WORK/loader_stages.json"
step loader_packed $D/loader_throughput.py --layout sparse --workers $PACKED_WORKERS --batch 32 \
    --batches "${LOADER_BATCHES:-30}" --out "$WORK/loader_sparse.json"
step pipeline_packed $D/train_pipeline.py $PIPE --layout sparse --clips-per-class 60 --frames-per-video 128 \
    --device "$DEVNAME" --amp "$AMP" --epochs 2 --steps 24 --out "$WORK/train_pipeline_sparse.json"
# torch.compile last: its compile time is the least predictable. `compile`: what `vidapter train` runs on CUDA (compiled,
# frozen matrices in bf16), with its kernel split; then the same model's compiled inference
step compile timeout "$COMPILE_LIMIT" $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 32 --modes train \
    --variants baseline compile-bf16 --profile --out "$WORK/vs_baseline_compile.json"
step compile timeout "$COMPILE_LIMIT" $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 32 --modes inference \
    --variants baseline compile-bf16 --out "$WORK/vs_baseline_compile_inference.json"
# optional compiled levers (ONLY="compile_graphs compile_levers"): batch 8 compiled, without and with CUDA graphs (the
# step is launch-bound there), then at batch 32 the default against model.temporal_attention=frames ($COMPILE_LEVERS
# picks others: compile-sdpa compile-budget compile-none ...). Each compile took 40-70 s on the H200 machine's CPU.
# The temporal attention alone, compiled three ways as the block runs it (SDPA, batched GEMMs, broadcast products from
# the frame layout): time, batched GEMMs, layout copies (optional: ONLY=temporal_attention)
step temporal_attention timeout 120 $M/temporal_attention.py $DEV $DT $( [ "${DRY_RUN:-0}" = 1 ] && echo --width 64 --heads 4 ) \
    --batch 32 --out "$WORK/temporal_attention.json"
step compile_graphs timeout 240 $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 8 --modes train --profile \
    --variants baseline compile-bf16 compile-graphs --out "$WORK/vs_baseline_compile_graphs.json"
step compile_levers timeout 330 $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 32 --modes train --profile \
    --variants ${COMPILE_LEVERS:-baseline compile-bf16 compile-fused} --out "$WORK/vs_baseline_compile_levers.json"
# matmul epilogues (optional: ONLY=compile_autotune): compile-fused in mode max-autotune-no-cudagraphs, where Triton
# matmul templates may take the elementwise kernel after a matmul (benchmarks/model/compiled_census.py: up to 0.51 GB per
# clip); tuning every matmul shape makes this the longest compile
step compile_autotune timeout 450 $M/vs_baseline.py $DEV $DT $SMALL $IT --frames 8 --batch 32 --modes train --profile \
    --variants baseline compile-autotune --out "$WORK/vs_baseline_compile_autotune.json"
ls -la "$WORK"
save
exit $status

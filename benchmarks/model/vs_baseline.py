"""vidapter's AIM vs the reference design (tests/reference/aim.py), side by side in one run, same weights.

For each (frames T, batch B) and each variant: train step (frozen backbone, AIM's trainable set, AdamW) and inference
clips/s, peak memory, model FLOPs utilisation, and the ratios to the baseline. All variants load the same random
weights (the baseline's state dict, converted by ``vidapter convert``'s converter); the script first checks that
vidapter and the baseline give the same logits (fp32, eval). Only the model being measured is on the device, so a
CUDA peak (``max_memory_allocated``) is that model's weights, gradients, AdamW state and activations.

Variants (the levers measured in docs/benchmarks.md; ``--variants`` picks them):
  baseline           the reference design
  vidapter           the library's defaults (recompute=pointwise, SDPA on fused qkv, batch-first, no layout copies)
  recompute-none     plain autograd (LayerNorm keeps fp32 copies, QuickGELU two tensors)
  recompute-mlp      the MLP hidden layer recomputed in backward
  checkpoint         whole-block activation checkpointing
  bf16-frozen        frozen matrices stored in bf16 (train.frozen_dtype=auto under amp=bf16; exact, no cast per step)
  compile            torch.compile of the model (default mode, static shapes); compile time reported apart, not timed
  compile-bf16       compile with frozen matrices in bf16: what `vidapter train` does on CUDA under amp=bf16
  compile-none       compile-bf16 with recompute=none: the compiler's partitioner alone decides what to save
  compile-budget     compile-bf16 under torch._functorch.config.activation_memory_budget=--memory-budget
  compile-graphs     compile-bf16 in mode="reduce-overhead": the training step's forward and backward as CUDA graphs
  compile-regional   compile-bf16 block by block (on the H200 it recompiled per block: drop-path rates differ)
  compile-sdpa       compile-bf16 with the temporal pass's attention on SDPA (model.temporal_attention=sdpa)
  compile-fused      compile-bf16 with model.temporal_attention=frames: the temporal pass read in the frame layout,
                     its attention as broadcast products the compiler fuses (no regrouping copies, no 8x8 GEMMs)
  compile-autotune   compile-fused in mode="max-autotune-no-cudagraphs": Triton matmul templates that can take the
                     elementwise kernel after a matmul as its epilogue (long compile: every matmul shape is tuned)
  temporal-sdpa      vidapter with the temporal attention on SDPA, eager (the default does so on the CPU only)
  temporal-math      vidapter with the temporal attention as explicit products, eager (the default on CUDA)
  cudagraph          inference only: the forward captured once in a CUDA graph and replayed (CUDA only)
  no-temporal        vidapter without the temporal pass (not AIM: it prices the temporal pass, 1 - its time / AIM's)

MFU = FLOPs per step x steps/s / the GPU's dense peak, with FLOPs from torch.utils.flop_counter (2 per
multiply-accumulate): inference 1 x forward, training 2 x forward (forward plus input-gradient backward; the frozen
weights need no weight gradients).

    python benchmarks/model/vs_baseline.py --device cpu --dtype fp32 --frames 8 --batch 1 --out results.json
    python benchmarks/model/vs_baseline.py --device cuda --dtype bf16 --frames 8 --batch 8 32 --out vs_baseline.json
    python benchmarks/model/vs_baseline.py --device cuda --variants baseline vidapter compile cudagraph --batch 32 ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import VARIANTS, build_pair, variant_model  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import kernel_time, peak_mib, reset_peak, seconds_per_call, sync  # noqa: E402
from vidapter.models.flops import count_macs  # noqa: E402

# Dense bf16 peak, TFLOP/s, by device name (NVIDIA data sheets); --peak-tflops overrides.
PEAK_TFLOPS = {"H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.4,
               "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.2}  # fmt: skip


def cuda_graph_forward(model, video, amp: dict):
    """Capture one inference forward in a CUDA graph; returns a function that replays it on the same input buffer."""
    static = video.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode(), torch.autocast(**amp, cache_enabled=False):
        for _ in range(3):
            model(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode(), torch.autocast(**amp, cache_enabled=False):
        model(static)
    return graph.replay


def measure(model, video, labels, device, dtype, train: bool, warmup: int, iters: int, graph: bool = False,
            profile: bool = False) -> dict:  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if train else None
    model.train(train)
    amp = dict(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        if train:
            with torch.autocast(**amp):
                loss = F.cross_entropy(model(video).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), torch.autocast(**amp):
                model(video)

    reset_peak(device)
    start = time.perf_counter()
    if graph:
        step = cuda_graph_forward(model, video, amp)
    step()  # the first call pays for compilation, graph capture and allocator growth
    sync(device)
    first = time.perf_counter() - start
    seconds = seconds_per_call(step, device, warmup, iters)
    result = {"clips_per_s": video.shape[0] / seconds, "s_per_iter": seconds, "first_call_s": first,
              "peak_mib": peak_mib(device)}  # fmt: skip
    if profile and train:
        result["kernels"] = kernel_time(step, 2, device.type == "cuda", wall_ms=seconds * 1e3)
    return result


def peak_tflops(device, override: float | None) -> float | None:
    if override or device.type != "cuda":
        return override
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", help="override the preset's backbone (tiny_clip for a dry run)")
    p.add_argument("--frames", type=int, nargs="+", default=[8])
    p.add_argument("--batch", type=int, nargs="+", default=[8])
    p.add_argument("--variants", nargs="+", default=["baseline", "vidapter"], choices=VARIANTS)
    p.add_argument("--modes", nargs="+", default=["train", "inference"], choices=["train", "inference"])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--peak-tflops", type=float, help="the device's dense peak for --dtype (default: by device name)")
    p.add_argument("--memory-budget", type=float, default=0.8, help="compile-budget's activation budget")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also each train step's GPU kernel time by kind and the busy fraction (as profile_step.py)",
    )
    p.add_argument("--out", required=True)
    args = p.parse_args()
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    peak = peak_tflops(device, args.peak_tflops)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    memory_metric = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process max RSS (monotone)"
    records = []
    for frames in args.frames:
        ours, base, size, classes = build_pair(args.preset, frames, args.backbone)
        check = torch.randn(1, 3, frames, size, size)
        with torch.no_grad():
            diff = (ours.eval()(check) - base.eval()(check)).abs().max().item()
        flops = 2 * count_macs(ours, (1, 3, frames, size, size))  # forward FLOPs per clip
        cases = {b: {"frames": frames, "batch": b, "max_logit_diff_fp32": diff, "forward_gflops_per_clip": flops / 1e9}
                 for b in args.batch}  # fmt: skip
        records += cases.values()
        for name in args.variants:  # one copy of the model per variant, on the device for all its cases
            if name == "cudagraph" and device.type != "cuda":
                continue
            variant = "vidapter" if name == "cudagraph" else name
            module, run = variant_model(variant, ours, base, dtype == torch.bfloat16, args.memory_budget)
            module.to(device)
            for batch, rec in cases.items():
                video = torch.randn(batch, 3, frames, size, size, device=device)
                labels = torch.randint(0, classes, (batch,), device=device)
                for mode in args.modes:
                    if name == "cudagraph" and mode == "train":
                        continue
                    key = f"{mode}_{name}"
                    try:
                        rec[key] = measure(run, video, labels, device, dtype, mode == "train", args.warmup,
                                           args.iters, graph=name == "cudagraph", profile=args.profile)  # fmt: skip
                        if peak:
                            step_flops = flops * (2 if mode == "train" else 1)
                            rec[key]["mfu"] = step_flops * rec[key]["clips_per_s"] / (peak * 1e12)
                    except torch.OutOfMemoryError:
                        rec[key] = "oom"
                    except Exception as e:  # a lever that fails (a compiler error, say) is a result, not a crash
                        rec[key] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                    base_rec = rec.get(f"{mode}_baseline")
                    if isinstance(rec[key], dict) and isinstance(base_rec, dict) and name != "baseline":
                        rec[key]["speedup"] = rec[key]["clips_per_s"] / base_rec["clips_per_s"]
                        rec[key]["memory_ratio"] = rec[key]["peak_mib"] / base_rec["peak_mib"]
                    brief = rec[key]
                    if isinstance(brief, dict):
                        brief = {k: round(v, 3) if isinstance(v, float) else v for k, v in brief.items()}
                    print(f"T={frames} B={batch} {key}: {brief}", flush=True)
                    # after every measurement: a run cut off at its limit keeps what it finished
                    write_record(args.out, "vs_baseline", describe_machine(device_name, peak_tflops=peak),
                                 dtype=args.dtype, memory_metric=memory_metric, records=records)  # fmt: skip
                del video, labels
            module.to("cpu")
            del module, run
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

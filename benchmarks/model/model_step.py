"""Forward and train-step throughput and peak memory of an AIM video model, per (frames, batch).

For each case: (a) forward-only clips/s in eval mode under ``torch.inference_mode``; (b) train-step clips/s (train mode,
forward, cross-entropy on random labels, backward, AdamW over the trainable parameters only, zero_grad(set_to_none)).
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset per phase, weights included); on CPU the growth of the
process-wide max RSS (``ru_maxrss``) during the phase, which is 0 when an earlier, larger phase already set the peak.
Weights are random (``pretrained=None``): throughput does not depend on them.

    python benchmarks/model_step.py --device cuda --dtype bf16 --frames 8 16 32 --batch 8 32 --out model_step.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import shlex
import sys
import time

import torch
import torch.nn.functional as F

from vidapter.classifier import build_model
from vidapter.presets import get_preset


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = torch.autocast(bfloat16)")
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", default=None, help="override the preset's backbone (e.g. tiny_clip to smoke-test)")
    p.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing per block")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--out", default=None, help="write the JSON results here")
    return p.parse_args()


def machine_info(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device == "cuda":
        info.update(device_name=torch.cuda.get_device_name(), cuda=torch.version.cuda, tf32=True)
    return info


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: str) -> float:
    """Start a memory measurement; returns the CPU baseline (process max RSS so far, MiB)."""
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    return maxrss_mib()


def timed(fn, device: str, warmup: int, iters: int) -> float:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls (CUDA synchronised around the timer)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def autocast(args: argparse.Namespace):
    if args.dtype == "bf16":
        return torch.autocast(args.device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def measure(phase: str, step, batch: int, args: argparse.Namespace) -> dict:
    """Time ``step`` and take its peak memory; an out-of-memory error on CUDA is recorded as "oom"."""
    try:
        base = reset_peak(args.device)
        sec = timed(step, args.device, args.warmup, args.iters)
    except torch.cuda.OutOfMemoryError:
        return {f"{phase}_clips_per_s": "oom", f"{phase}_peak_mib": "oom"}
    rec = {f"{phase}_s_per_iter": sec, f"{phase}_clips_per_s": batch / sec}
    if args.device == "cuda":
        return rec | {f"{phase}_peak_mib": torch.cuda.max_memory_allocated() / 2**20}
    # CPU: growth of the process-wide max RSS during this phase, and that max itself
    return rec | {f"{phase}_peak_mib": max(0.0, maxrss_mib() - base), f"{phase}_process_maxrss_mib": maxrss_mib()}


def run_case(model, frames: int, batch: int, args: argparse.Namespace) -> dict:
    dev, size = args.device, model.backbone.image_size
    rec = {"frames": frames, "batch": batch}
    try:
        video = torch.randn(batch, 3, frames, size, size, device=dev)
        labels = torch.randint(0, model.num_classes, (batch,), device=dev)
    except torch.cuda.OutOfMemoryError:
        return rec | {k: "oom" for k in ("fwd_clips_per_s", "fwd_peak_mib", "train_clips_per_s", "train_peak_mib")}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def forward():
        with torch.inference_mode(), autocast(args):
            model(video)

    def train_step():
        with autocast(args):
            loss = F.cross_entropy(model(video), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.eval()
    rec |= measure("fwd", forward, batch, args)
    model.train()
    rec |= measure("train", train_step, batch, args)
    model.zero_grad(set_to_none=True)
    return rec


def fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, float) else str(v)


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device available")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    mem = (
        "peak MiB (cuda max_memory_allocated, incl. weights)"
        if args.device == "cuda"
        else "peak MiB (growth of process max RSS)"
    )
    result = {
        "benchmark": "model_step",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "args": vars(args),
        "machine": machine_info(args.device),
        "memory_metric": mem,
        "records": [],
    }
    print(f"{'T':>3} {'B':>4} {'fwd clips/s':>12} {'train clips/s':>14} {'fwd MiB':>9} {'train MiB':>10}  [{mem}]")
    for frames in args.frames:
        cfg = get_preset(args.preset)
        cfg.model.pretrained = None
        cfg.model.num_frames = frames
        cfg.model.grad_checkpointing = args.grad_checkpointing
        if args.backbone:
            cfg.model.backbone = args.backbone
        model = build_model(cfg.model).to(args.device)
        n_all = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        for batch in args.batch:
            rec = run_case(model, frames, batch, args)
            rec.update(
                params=n_all, trainable_params=n_train, dtype=args.dtype, grad_checkpointing=args.grad_checkpointing
            )
            result["records"].append(rec)
            print(
                f"{frames:>3} {batch:>4} {fmt(rec['fwd_clips_per_s'], '12.3f'):>12} "
                f"{fmt(rec['train_clips_per_s'], '14.3f'):>14} {fmt(rec['fwd_peak_mib'], '9.0f'):>9} "
                f"{fmt(rec['train_peak_mib'], '10.0f'):>10}",
                flush=True,
            )
            if args.out:  # rewrite after every case so a long run that is cut off keeps what it measured
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w") as f:
                    json.dump(result, f, indent=2)
        del model
        reset_peak(args.device)


if __name__ == "__main__":
    main()

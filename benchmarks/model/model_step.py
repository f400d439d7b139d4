"""Forward and train-step throughput and peak memory of an AIM video model, per (frames, batch).

For each case: (a) forward-only clips/s in eval mode under ``torch.inference_mode``; (b) train-step clips/s (train mode,
forward, cross-entropy on random labels, backward, AdamW over the trainable parameters only, zero_grad(set_to_none)).
Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset per phase, weights included); on CPU the growth of the
process-wide max RSS (``ru_maxrss``) during the phase, which is 0 when an earlier, larger phase already set the peak.
Weights are random (``pretrained=None``): throughput does not depend on them.

    python benchmarks/model/model_step.py --device cuda --dtype bf16 --frames 8 16 32 --batch 8 32 --out model_step.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import MIB, max_rss_mib, reset_peak, seconds_per_call  # noqa: E402
from vidapter.classifier import build_model  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402


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


def start_peak(device: str) -> float:
    """Start a memory measurement; returns the CPU baseline (process max RSS so far, MiB)."""
    gc.collect()
    reset_peak(device)
    return 0.0 if device == "cuda" else max_rss_mib()


def autocast(args: argparse.Namespace):
    if args.dtype == "bf16":
        return torch.autocast(args.device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def measure(phase: str, step, batch: int, args: argparse.Namespace) -> dict:
    """Time ``step`` and take its peak memory; an out-of-memory error on CUDA is recorded as "oom"."""
    try:
        base = start_peak(args.device)
        sec = seconds_per_call(step, args.device, args.warmup, args.iters)
    except torch.cuda.OutOfMemoryError:
        return {f"{phase}_clips_per_s": "oom", f"{phase}_peak_mib": "oom"}
    rec = {f"{phase}_s_per_iter": sec, f"{phase}_clips_per_s": batch / sec}
    if args.device == "cuda":
        return rec | {f"{phase}_peak_mib": torch.cuda.max_memory_allocated() / MIB}
    # CPU: growth of the process-wide max RSS during this phase, and that max itself
    return rec | {f"{phase}_peak_mib": max(0.0, max_rss_mib() - base), f"{phase}_process_maxrss_mib": max_rss_mib()}


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
    machine = {"device_name": torch.cuda.get_device_name(), "tf32": True} if args.device == "cuda" else {}
    machine = describe_machine(args.device, **machine)
    records = []
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
            records.append(rec)
            print(
                f"{frames:>3} {batch:>4} {fmt(rec['fwd_clips_per_s'], '12.3f'):>12} "
                f"{fmt(rec['train_clips_per_s'], '14.3f'):>14} {fmt(rec['fwd_peak_mib'], '9.0f'):>9} "
                f"{fmt(rec['train_peak_mib'], '10.0f'):>10}",
                flush=True,
            )
            if args.out:  # rewrite after every case so a long run that is cut off keeps what it measured
                write_record(args.out, "model_step", machine, args=vars(args), memory_metric=mem, records=records)
        del model
        start_peak(args.device)


if __name__ == "__main__":
    main()

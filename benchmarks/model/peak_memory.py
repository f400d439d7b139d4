"""The peak of a training step's tensor memory, on any machine: what a GPU's ``max_memory_allocated`` will show, less
the allocator's rounding and library workspaces.

saved_memory.py counts what backward keeps (a floor). The peak adds backward's temporaries: gradients in flight and the
buffers each backward function allocates while nearly every saved tensor is still alive. This script runs one
bf16-autocast training step (forward, cross-entropy, backward) under ``torch.profiler`` with memory profiling, takes
the profiler's memory timeline (every tensor allocation and free, by category) and reports its maximum, at batch 1
and 2: per clip = P(2) - P(1), fixed = 2 P(1) - P(2). The AdamW state (2 fp32 copies of the trainable set), which a
real run holds throughout, is added for the projection to batch 8 and 32. ``--check-batch`` measures one more batch
to test the linear projection.

The counts are the CPU kernels' allocations; CUDA's kernels allocate about the same for this model (the same ATen ops,
autocast alike), except attention, whose CPU and CUDA backward kernels use different scratch buffers. The GPU suite
measures ``max_memory_allocated`` itself.

    python benchmarks/model/peak_memory.py --out docs/results/peak_memory_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import build_pair, variant_model  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import MIB  # noqa: E402

# columns of the profiler's timeline after the unused first one (torch.profiler._memory_profiler's category order)
CATEGORIES = (
    "parameter",
    "optimizer_state",
    "input",
    "temporary",
    "activation",
    "gradient",
    "autograd_detail",
    "other",
)


def step_peak(run, batch: int, frames: int, size: int) -> tuple[float, dict[str, float]]:
    """Peak tensor bytes of one bf16 training step, and the bytes by category at that moment."""
    video = torch.randn(batch, 3, frames, size, size)
    labels = torch.zeros(batch, dtype=torch.long)
    run.train()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(run(video).float(), labels)
        loss.backward()
    run.zero_grad(set_to_none=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # export_memory_timeline: deprecated in favour of a CUDA tool
        prof.export_memory_timeline(f"{tmp}/timeline.json", device="cpu")
        _, sizes = json.loads(Path(f"{tmp}/timeline.json").read_text())
    totals = [sum(s) for s in sizes]
    at = max(range(len(totals)), key=totals.__getitem__)
    return totals[at], dict(zip(CATEGORIES, sizes[at][1:], strict=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", help="override the preset's backbone (tiny_clip for a quick check)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--variants", nargs="+", default=["baseline", "recompute-none", "vidapter", "recompute-mlp"])
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batches to project the peak to")
    p.add_argument("--check-batch", type=int, help="also measure this batch, to check the projection")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    ours, base, size, _ = build_pair(args.preset, args.frames, args.backbone)
    rows = []
    for name in args.variants:
        t0 = time.perf_counter()
        model, run = variant_model(name, ours, base)
        adamw = sum(2 * 4 * q.numel() for q in model.parameters() if q.requires_grad)
        (p1, at1), (p2, _) = (step_peak(run, b, args.frames, size) for b in (1, 2))
        per_clip, fixed = p2 - p1, 2 * p1 - p2
        row = {
            "variant": name,
            "peak_batch1_mib": p1 / MIB,
            "peak_batch2_mib": p2 / MIB,
            "per_clip_mib": per_clip / MIB,
            "fixed_mib": fixed / MIB,
            "adamw_state_mib": adamw / MIB,
            "at_peak_batch1_mib": {k: v / MIB for k, v in at1.items()},
            "projected_peak_mib": {str(b): (fixed + adamw + b * per_clip) / MIB for b in args.batch},
        }
        if args.check_batch:
            measured, _ = step_peak(run, args.check_batch, args.frames, size)
            row["check"] = {
                "batch": args.check_batch,
                "measured_mib": measured / MIB,
                "projected_mib": (fixed + args.check_batch * per_clip) / MIB,
            }
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        proj = ", ".join(f"B={b}: {v:,.0f}" for b, v in row["projected_peak_mib"].items())
        line = f"{name:<16} peak per clip {row['per_clip_mib']:7.1f} MiB, fixed {row['fixed_mib']:6.1f} MiB, "
        line += f"+AdamW {row['adamw_state_mib']:5.1f} MiB; projected {proj} MiB"
        if args.check_batch:
            chk = row["check"]
            line += f"; B={chk['batch']} measured {chk['measured_mib']:,.0f} vs {chk['projected_mib']:,.0f} projected"
        print(line, flush=True)
        del model, run
    base_row = next((r for r in rows if r["variant"] == "baseline"), None)
    if base_row:
        for r in rows:
            r["vs_baseline"] = {b: v / base_row["projected_peak_mib"][b] for b, v in r["projected_peak_mib"].items()}
            print(f"{r['variant']:<16} vs baseline: "
                  + ", ".join(f"B={b}: {v:.3f}x" for b, v in r["vs_baseline"].items()))  # fmt: skip
    write_record(
        args.out,
        "peak_memory",
        describe_machine("cpu (bf16 autocast, profiler memory timeline)"),
        preset=args.preset,
        backbone=args.backbone,
        frames=args.frames,
        rows=rows,
    )


if __name__ == "__main__":
    main()

"""Where a training step's time goes, by kernel kind: matmul, attention, everything else (torch.profiler).

The measured counterpart of op_census.py's model: on CUDA, the self time of every GPU kernel of ``--steps`` training
steps (after warm-up), grouped by name into matmul (GEMM kernels), attention (flash / memory-efficient / cuDNN
attention) and other (elementwise, reductions, copies, casts, LayerNorm, optimizer); on a CPU the same split of ATen
ops' self CPU time. Per variant (vs_baseline.py's variants), per step, in ms, with the fraction of each kind, and the
wall time of the same steps run without the profiler (kernel time / wall time = how busy the step keeps the GPU).

    python benchmarks/model/profile_step.py --device cuda --batch 32 --out gpu-results/profile_step.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import VARIANTS, build_pair, variant_model  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import kernel_time, seconds_per_call  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--variants", nargs="+", default=["baseline", "vidapter", "recompute-none"], choices=VARIANTS)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    ours, base, size, classes = build_pair(args.preset, args.frames, args.backbone)
    video = torch.randn(args.batch, 3, args.frames, size, size, device=device)
    labels = torch.randint(0, classes, (args.batch,), device=device)
    rows = []
    for name in args.variants:
        module, model = variant_model(name, ours, base)
        module.to(device).train()
        opt = torch.optim.AdamW([q for q in module.parameters() if q.requires_grad], lr=1e-4)

        def step(model=model, opt=opt):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(video).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        # wall time without the profiler: kernel time / wall = how busy the GPU is kept
        wall_ms = seconds_per_call(step, device, args.warmup, args.steps) * 1e3
        row = {"variant": name, **kernel_time(step, args.steps, cuda, wall_ms)}
        rows.append(row)
        split = ", ".join(f"{k} {v:.1f} ms ({100 * row['fraction'][k]:.0f} %)" for k, v in row["ms"].items())
        print(f"{name:<16} {row['ms_per_step']:8.1f} ms/step of kernels in {row['wall_ms_per_step']:8.1f} ms wall: "
              f"{split}", flush=True)  # fmt: skip
        module.to("cpu")
        del module, model, opt
        if cuda:
            torch.cuda.empty_cache()
    write_record(args.out, "profile_step", describe_machine(torch.cuda.get_device_name() if cuda else "cpu"),
                 batch=args.batch, frames=args.frames, steps=args.steps, rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

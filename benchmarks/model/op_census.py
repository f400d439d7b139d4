"""Every kernel of a training step or inference pass, counted on any machine: matmul FLOPs, other bytes, kernels.

A GPU step's time is roughly matmul FLOPs / achieved matmul rate + bytes moved by every other kernel / memory
bandwidth + kernel count x launch cost. This script records every ATen op of a bf16-autocast training step (forward,
cross-entropy, backward; no optimizer) with a ``TorchDispatchMode`` and sums, per model variant:
- matmul work: FLOPs of mm / addmm / bmm / convolution / attention (2 per multiply-accumulate; attention backward is
  counted as 2.5x its forward, as FlashAttention's backward does);
- everything else: kernels (ops that are not views) and the bytes they read and write (inputs + outputs), the memory
  traffic that fusion (torch.compile) can remove;
- layout copies: the bytes of ``clone`` / ``copy_`` / ``_to_copy`` / ``contiguous``-style ops among them.
Each sum is taken at batch 1 and 2: per clip = S(2) - S(1), per step = 2 S(1) - S(2) (autocast's casts of frozen
weights, for one). Kernel counts do not depend on the batch. Then it prints a time estimate from those sums and the
rates given (defaults: an H100's 600 TFLOP/s achieved bf16 matmul rate, 2.5 TB/s achieved bandwidth, 5 us per kernel
launch): a model, not a measurement; the GPU suite measures. CPU and CUDA dispatch mostly the same ATen ops here; the
CPU's attention kernel may copy its inputs where CUDA's reads them strided, so copies are an upper bound.
``--mode inference`` counts an eval-mode bf16 forward under ``no_grad`` instead (the inference setting of
docs/benchmarks.md, a batch of 32 clips of 3 views each, is ``--batch 32 --views 3``).

    python benchmarks/model/op_census.py --frames 8 --out docs/results/op_census_cpu.json
    python benchmarks/model/op_census.py --frames 8 --mode inference --views 3 --batch 32 \\
        --variants baseline vidapter --out docs/results/op_census_inference_cpu.json
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import build_pair, variant_model  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402

aten = torch.ops.aten
VIEWS = {"view", "_unsafe_view", "t", "transpose", "permute", "expand", "slice", "select", "unsqueeze", "squeeze",
         "detach", "alias", "split", "split_with_sizes", "unbind", "as_strided", "_reshape_alias", "reshape",
         "lift_fresh", "empty", "empty_like", "new_empty", "empty_strided", "_to_copy_view"}  # fmt: skip
COPIES = {"clone", "copy_", "_to_copy", "contiguous"}


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def matmul_flops(name: str, args, out) -> float | None:
    """FLOPs of a matmul-like op, None for other ops."""
    if name in ("mm", "addmm", "bmm", "baddbmm"):
        a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
        batch = a.shape[0] if a.ndim == 3 else 1
        return 2.0 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    if name == "convolution":
        w = args[1]
        return 2.0 * out.numel() * w[0].numel()
    if name.startswith("_scaled_dot_product") and name.endswith("attention") or name.endswith("attention_for_cpu"):
        q, k = args[0], args[1]
        return 4.0 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
    if name.startswith("_scaled_dot_product") and "backward" in name:
        q, k = args[1], args[2]
        return 2.5 * 4.0 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
    return None


class Census(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.flops = 0.0
        self.kernels = collections.Counter()
        self.bytes = collections.Counter()
        self.matmuls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in VIEWS:
            return out
        flops = matmul_flops(name, args, out if isinstance(out, torch.Tensor) else tree_flatten(out)[0][0])
        if flops is not None:
            self.flops += flops
            self.matmuls += 1
            return out
        tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
        self.kernels[name] += 1
        self.bytes[name] += sum(t.numel() * t.element_size() for t in tensors)
        return out


def census(model, video, labels, mode: str = "train") -> Census:
    c = Census()
    if mode == "inference":
        model.eval()
        with c, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(video)
        return c
    model.train()
    with c, torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(video).float(), labels)
    with c:
        loss.backward()
    model.zero_grad(set_to_none=True)
    return c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--variants", nargs="+", default=["baseline", "vidapter", "recompute-none", "recompute-mlp"])
    p.add_argument("--tflops", type=float, default=600.0, help="achieved bf16 matmul rate for the estimate")
    p.add_argument("--tbps", type=float, default=2.5, help="achieved memory bandwidth, TB/s, for the estimate")
    p.add_argument("--launch-us", type=float, default=5.0)
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batches (clips) for the time estimate")
    p.add_argument("--mode", choices=("train", "inference"), default="train")
    p.add_argument("--views", type=int, default=1, help="views per clip (inference): the estimate runs batch x views")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    ours, base, size, classes = build_pair(args.preset, args.frames, args.backbone)
    rows = []
    for name in args.variants:
        model, run = variant_model(name, ours, base)
        one, two = (census(run, torch.randn(b, 3, args.frames, size, size), torch.zeros(b, dtype=torch.long),
                           args.mode) for b in (1, 2))  # fmt: skip
        flops = (two.flops - one.flops, 2 * one.flops - two.flops)  # (per clip, per step)
        b1, b2 = sum(one.bytes.values()), sum(two.bytes.values())
        total = (b2 - b1, 2 * b1 - b2)
        copy1, copy2 = (sum(v for k, v in c.bytes.items() if k in COPIES) for c in (one, two))
        per_clip = collections.Counter({k: two.bytes[k] - one.bytes[k] for k in two.bytes})
        row = {
            "variant": name,
            "matmul_gflop_per_clip": flops[0] / 1e9,
            "matmul_gflop_per_step": flops[1] / 1e9,
            "matmul_kernels": one.matmuls,
            "other_kernels": sum(one.kernels.values()),
            "other_gb_per_clip": total[0] / 1e9,
            "other_gb_per_step": total[1] / 1e9,
            "copy_gb_per_clip": (copy2 - copy1) / 1e9,
            "top_other_ops_gb_per_clip": {k: v / 1e9 for k, v in per_clip.most_common(12)},
            "estimate_ms": {},
        }
        c = one
        for clips in args.batch:  # kernel counts do not grow with the batch; FLOPs and bytes do
            b = clips * args.views
            est = {
                "matmul": (b * flops[0] + flops[1]) / (args.tflops * 1e12) * 1e3,
                "memory": (b * total[0] + total[1]) / (args.tbps * 1e12) * 1e3,
                "launch": (c.matmuls + sum(c.kernels.values())) * args.launch_us / 1e3,
            }
            est["total"] = sum(est.values())
            row["estimate_ms"][str(clips)] = est
        rows.append(row)
        e8 = row["estimate_ms"][str(args.batch[0])]
        print(f"{name:<16} matmul {row['matmul_gflop_per_clip']:7.1f} GFLOP/clip in {c.matmuls} kernels; other: "
              f"{row['other_kernels']} kernels, {row['other_gb_per_clip']:.2f} GB/clip + "
              f"{row['other_gb_per_step']:.2f} GB/step (copies "
              f"{row['copy_gb_per_clip']:.2f}); estimate at B={args.batch[0]}: {e8['total']:.1f} ms (matmul "
              f"{e8['matmul']:.1f}, memory {e8['memory']:.1f}, launch {e8['launch']:.1f})", flush=True)  # fmt: skip
    write_record(
        args.out,
        "op_census",
        describe_machine("cpu (bf16 autocast)"),
        mode=args.mode,
        views=args.views,
        frames=args.frames,
        rates={"tflops": args.tflops, "tbps": args.tbps, "launch_us": args.launch_us},
        rows=rows,
    )


if __name__ == "__main__":
    main()

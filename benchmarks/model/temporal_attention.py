"""The temporal pass's attention three ways, compiled, alone, as the AIM block runs it: from tokens in the frame
layout (B*T, N, D) back to it. SDPA and explicit batched GEMMs (the CUDA default) on tokens regrouped to (B*N, T, D)
and back; broadcast products read straight from the frame layout (``adapters.aim.over_frames``, taken by a compiled
block with ``temporal_frames``). For each: time per forward + input-gradient backward, the number of batched GEMM
calls, the largest buffer in the generated code (whether the compiler materialised the T x T x head-dim broadcast
products) and the layout copies (generated kernels named for a clone or permute).

    python benchmarks/model/temporal_attention.py --device cpu --dtype fp32 \\
        --out docs/results/temporal_attention_cpu.json
    python benchmarks/model/temporal_attention.py --device cuda --dtype bf16 --batch 32 --out temporal_attention.json
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import torch
from einops import rearrange
from torch._inductor.utils import run_and_get_code

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import seconds_per_call  # noqa: E402
from vidapter.adapters.aim import over_frames  # noqa: E402
from vidapter.models.vit import Attention  # noqa: E402

WAYS = ("sdpa", "bmm", "fused")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--batch", type=int, default=2, help="clips; the attention runs over batch x 197 sequences")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--tokens", type=int, default=197)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    device = torch.device(args.device)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    rows = []
    for way in WAYS:
        torch._dynamo.reset()
        torch.manual_seed(0)
        attn = Attention(args.width, args.heads).to(device).requires_grad_(False)
        x = torch.randn(args.batch * args.frames, args.tokens, args.width, device=device, requires_grad=True)

        def temporal(x, attn=attn, way=way, t=args.frames, n=args.tokens):
            if way == "fused":
                return over_frames(attn, x, t)
            y = attn(rearrange(x, "(b t) n d -> (b n) t d", t=t), math=way == "bmm")
            return rearrange(y, "(b n) t d -> (b t) n d", n=n)

        compiled = torch.compile(temporal, dynamic=False)

        def step(compiled=compiled, x=x):
            with torch.autocast(**amp):
                y = compiled(x)
            y.float().sum().backward()

        _, codes = run_and_get_code(step)
        code = "\n".join(codes)
        shapes = re.findall(r"empty_strided_\w+\(\(([\d, ]+)\)", code)
        largest = max((math.prod(int(n) for n in s.replace(" ", "").strip(",").split(",")) for s in shapes), default=0)
        ms = seconds_per_call(step, device, 2, args.iters) * 1e3
        elements = args.batch * args.frames * args.tokens * args.width
        row = {"way": way, "ms_fwd_bwd": ms, "bmm_calls": code.count("extern_kernels.bmm"),
               "layout_copy_kernels": len({k for k in re.findall(r"\b(?:cpp|triton)_\w*fused_\w+", code)
                                           if "clone" in k or "permute" in k}),
               "largest_buffer_elements": largest, "q_elements": elements,
               "broadcast_elements": elements * args.frames}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    write_record(args.out, "temporal_attention", describe_machine(name), dtype=args.dtype, batch=args.batch,
                 frames=args.frames, rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

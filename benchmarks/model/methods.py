"""Every method side by side at ViT-B/16, T=8, in one process: training step time and memory, and inference cost
before and after merging.

Rows: AIM, ST-Adapter 12x384 and 24x384, EVL (4 decoder layers), ZeroI2V (heads 0, 1 shifted), LoRA r=8 on qkv, proj,
fc1, fc2 with heads 0, 1 shifted, AIM with CLIP's cosine text head (400 class embeddings trained), ViFi-CLIP (both
towers fine-tuned: the text tower runs over the 400 prompts at every step), zero-shot CLIP (the frozen image model
and a fixed text head: its inference is what zero-shot evaluation costs per clip), and the frozen image model with a
linear head (the floor). Each is built from its preset's model section with random weights (speed does not depend
on them).

Train step: train mode, forward, cross-entropy on random labels, backward, AdamW over the trainable tensors,
zero_grad; the median of ``--iters`` steps after ``--warmup``. Memory per step: on CUDA the peak of
``torch.cuda.max_memory_allocated`` during the steps minus the memory held before them (weights); on any device also
the bytes autograd keeps for backward (counted once per storage) plus trainable weights, gradients and AdamW's moments
(``vidapter.demo.run.training_memory``), which shows EVL's claim (no activations of the backbone are kept) on a CPU.
Inference: eval-mode forward under ``torch.inference_mode``, median of ``--iters``; ZeroI2V and LoRA also after
``merge_adapters`` (ZeroI2V's claim: the merged model costs what the image model with shifted heads costs).

    python benchmarks/model/methods.py --device cpu --batch 2 --out methods_cpu.json
    python benchmarks/model/methods.py --device cuda --dtype bf16 --batch 32 --out methods_cuda.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.model_row import measure_row  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402

ROWS = {
    "frozen image model + linear head": ("k400_vitb16_8f", {"adapters": [], "temporal_embed": False}),
    "AIM": ("k400_vitb16_8f", {}),
    "ST-Adapter 12x384": ("st_adapter_k400_vitb16_8f", {}),
    "ST-Adapter 24x384": ("st_adapter_k400_vitb16_8f", {"sections": {"st_adapter": {"positions": ["attn", "mlp"]}}}),
    "EVL (4 layers)": ("evl_k400_vitb16_8f", {}),
    "ZeroI2V": ("zeroi2v_k400_vitb16_8f", {}),
    "LoRA r=8 + head shifts": ("k400_vitb16_8f", {"method": "lora", "adapters": [], "head_shifts": [-1, 1]}),
    "AIM + text head": ("k400_vitb16_8f", {"head": "text"}),
    "zero-shot CLIP (frozen, text head)": ("clip_zero_shot", {"num_classes": 400}),
    "ViFi-CLIP (both towers)": ("vifi_k400_vitb16_16f", {"num_frames": 8}),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = torch.autocast(bfloat16)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--backbone", default=None, help="override the backbone (tiny_clip: a smoke test)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--out", default=None, help="write the JSON record here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for name in args.rows:
        preset, changes = ROWS[name]
        m = dataclasses.replace(get_preset(preset).model, pretrained=None, **changes)
        if args.backbone:
            m = dataclasses.replace(m, backbone=args.backbone)
            m.evl.layers = min(m.evl.layers, 2)
        rows.append(measure_row(name, m, device, args.dtype, args.batch, args.warmup, args.iters))
    base = next((r for r in rows if r["row"] == "AIM"), None)
    if base:
        for r in rows:
            r["train_step_vs_aim"] = r["train_step_s"] / base["train_step_s"]
            r["kept_vs_aim"] = r["kept_for_step_mib"] / base["kept_for_step_mib"]
    if args.out:
        write_record(args.out, "methods", describe_machine(args.device), dtype=args.dtype, batch=args.batch, frames=8,
                     rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

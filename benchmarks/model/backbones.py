"""AIM on every image family side by side at base size, T=8, in one process: training step time and memory.

Rows: the model section of each family's K400 preset (``k400_<family>_8f``) beside AIM's own CLIP ViT-B/16
(``k400_vitb16_8f``), built with random weights (speed does not depend on them), at each preset's frame size (224;
DINOv2 at 224 too, its 518 px positions resampled). What is measured, and how, is methods.py's, one row each
(benchmarks/_core/model_row.py): the median train step (forward, cross-entropy, backward, AdamW), the bytes kept for
backward plus trainable state, eval-mode inference; on CUDA also the step's peak allocated memory.

    python benchmarks/model/backbones.py --device cpu --batch 1 --out backbones_cpu.json
    python benchmarks/model/backbones.py --device cuda --dtype bf16 --batch 16 --out backbones_cuda.json
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
from vidapter.presets import FAMILIES, get_preset  # noqa: E402

ROWS = {"clip_b16 (OpenAI)": "k400_vitb16_8f", **{f: f"k400_{f}_8f" for f in FAMILIES}}
# --tiny (a smoke run of this script): each row's tiny structure at 32 px
TINY = {"clip_b16 (OpenAI)": "tiny_clip", "laion2b_b16": "tiny_open_clip", "siglip_b16": "tiny_siglip",
        "siglip2_b16": "tiny_siglip", "dinov2_b14": "tiny_dinov2", "dinov3_b16": "tiny_dinov3",
        "pe_core_b16": "tiny_pe_core", "eva02_b16": "tiny_eva02"}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = torch.autocast(bfloat16)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="each family's tiny structure (a smoke run)")
    p.add_argument("--out", default=None, help="write the JSON record here")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for name in args.rows:
        m = dataclasses.replace(get_preset(ROWS[name]).model, pretrained=None)
        if args.tiny:
            m = dataclasses.replace(m, backbone=TINY[name], image_size=None)
        row = measure_row(name, m, device, args.dtype, args.batch, args.warmup, args.iters)
        row["backbone"] = m.backbone
        rows.append(row)
    for r in rows:
        r["train_step_vs_clip"] = r["train_step_s"] / rows[0]["train_step_s"]
        r["kept_vs_clip"] = r["kept_for_step_mib"] / rows[0]["kept_for_step_mib"]
    if args.out:
        write_record(args.out, "backbones", describe_machine(args.device), dtype=args.dtype, batch=args.batch,
                     frames=8, rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

"""What a training step keeps in memory, exactly, on any machine: vidapter's recompute modes vs the reference design.

Counts every tensor autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``, one count per storage,
parameters excluded) during a bf16-autocast training forward, at batch 1 and 2: per clip = S(2) - S(1), and the part
that does not grow with the batch = 2 S(1) - S(2) (in plain autograd: autocast's bf16 copies of the frozen weights, one
per use, since autocast caches casts only of weights that require grad; ``recompute=pointwise`` keeps none).
With the parameter, gradient and AdamW-state bytes this gives a memory floor for any batch, for one GPU:
weights + grads + AdamW + fixed + B x per-clip. A CUDA peak sits above it by backward's temporaries and the allocator.

CPU and CUDA autocast agree for this model (matmuls, convolutions and attention in bf16; CLIP's LayerNorm casts to
fp32 itself on both; cross-entropy runs on float logits), so the counts made on a CPU hold for a GPU.

Variants: ``baseline`` (tests/reference/aim.py), vidapter with ``recompute`` none / pointwise / mlp, whole-block
checkpointing, and ``+bf16 frozen``: frozen matrices stored in bf16 (exact under bf16 autocast; what
``train.frozen_dtype=auto`` does under ``train.amp=bf16``).

    python benchmarks/model/saved_memory.py --frames 8 16 32 --out docs/results/saved_memory_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import build_pair, cast_frozen_  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import MIB  # noqa: E402
from vidapter.adapters.peft import store_frozen_matrices_  # noqa: E402
from vidapter.models.vit import BACKBONES, set_recompute  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402


def saved_bytes(model: nn.Module, video: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward in one bf16-autocast training forward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            kept.setdefault(storage.data_ptr(), storage.nbytes())
        return t.detach()  # not t: a saved output would hold its own grad_fn, a cycle that leaks

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(video)
    del out
    return sum(kept.values())


def state_bytes(model: nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)  # fp32 grads; AdamW: 2 x fp32
    return {
        "weights": sum(p.numel() * p.element_size() for p in model.parameters()),
        "grads": trainable,
        "adamw": 2 * trainable,
    }


def measure(name: str, model: nn.Module, frames: int, size: int, batches: list[int], window: float = 0.0) -> dict:
    """``window``: bytes per clip that live only while a checkpointed block runs its backward (added to the floor)."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    s1 = saved_bytes(model, torch.randn(1, 3, frames, size, size))
    s2 = saved_bytes(model, torch.randn(2, 3, frames, size, size))
    state = state_bytes(model)
    rec = {
        "variant": name,
        "frames": frames,
        "saved_per_clip_mib": (s2 - s1) / MIB,
        "saved_fixed_mib": (2 * s1 - s2) / MIB,
        "recompute_window_per_clip_mib": window / MIB,
        **{f"{k}_mib": v / MIB for k, v in state.items()},
        "seconds": time.perf_counter() - t0,
    }
    base = sum(state.values()) + 2 * s1 - s2
    rec["floor_mib"] = {str(b): (base + b * (s2 - s1 + window)) / MIB for b in batches}
    return rec


def variants(preset: str, frames: int, backbone: str | None):
    """(name, model, window) triples; the models share the baseline's random weights.

    Block checkpointing keeps each block's input; during a block's backward that block's activations come back, so its
    window is one block's worth of the pointwise mode (measured on the same model, divided by the depth)."""
    ours, base, size, _ = build_pair(preset, frames, backbone)
    yield "baseline", base, 0.0
    video = [torch.randn(b, 3, frames, size, size) for b in (1, 2)]
    for mode in ("none", "pointwise", "mlp"):
        set_recompute(ours, mode)
        yield f"vidapter recompute={mode}", ours, 0.0
    set_recompute(ours, "pointwise")
    one_block = (saved_bytes(ours, video[1]) - saved_bytes(ours, video[0])) / len(ours.backbone.blocks)
    ours.grad_checkpointing = True
    yield "vidapter block checkpointing", ours, one_block
    ours.grad_checkpointing = False
    store_frozen_matrices_(ours, torch.bfloat16)
    for mode in ("pointwise", "mlp"):
        set_recompute(ours, mode)
        yield f"vidapter recompute={mode} +bf16 frozen", ours, 0.0
    cast_frozen_(base, torch.bfloat16)
    yield "baseline +bf16 frozen", base, 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", help="override the preset's backbone (tiny_clip for a quick check)")
    p.add_argument("--frames", type=int, nargs="+", default=[8])
    p.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batches to give the memory floor for")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_grad_enabled(True)
    records = []
    for frames in args.frames:
        size = BACKBONES[args.backbone or get_preset(args.preset).model.backbone].image_size
        for name, model, window in variants(args.preset, frames, args.backbone):
            rec = measure(name, model, frames, size, args.batch, window)
            records.append(rec)
            floors = ", ".join(f"B={b}: {v:,.0f}" for b, v in rec["floor_mib"].items())
            print(f"T={frames:<3} {name:<42} per clip {rec['saved_per_clip_mib']:7.1f} MiB, fixed "
                  f"{rec['saved_fixed_mib']:6.1f} MiB, weights {rec['weights_mib']:6.1f} MiB, floor {floors} MiB",
                  flush=True)  # fmt: skip
    write_record(
        args.out,
        "saved_memory",
        describe_machine("cpu (bf16 autocast)"),
        preset=args.preset,
        backbone=args.backbone,
        records=records,
    )


if __name__ == "__main__":
    main()

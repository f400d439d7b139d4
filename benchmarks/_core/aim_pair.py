"""vidapter's AIM and the reference design (tests/reference/aim.py) on the same random weights, and the variants
(levers) of vidapter's model the model benchmarks measure against it.

Every script that compares with the reference builds its pair here, so their numbers come from the same models:
vs_baseline.py, profile_step.py, op_census.py, compiled_census.py, peak_memory.py and saved_memory.py."""

from __future__ import annotations

import copy
import sys

import torch

from benchmarks._core.record import REPO

# the reference design is a test oracle (tests/reference/): the tests check vidapter's logits against it, the
# benchmarks measure vidapter against it. pytest puts tests/ on the path; here it goes last, so that the test
# folders' names (data, models) shadow no installed module
sys.path.append(str(REPO / "tests"))
from reference.aim import I3DHead, Recognizer3D, ViT_CLIP, freeze_like_aim  # noqa: E402

from vidapter.adapters.aim import set_temporal_attention  # noqa: E402
from vidapter.adapters.peft import store_frozen_matrices_  # noqa: E402
from vidapter.classifier import build_model  # noqa: E402
from vidapter.config import apply_overrides  # noqa: E402
from vidapter.models.convert import aim_official_to_vidapter  # noqa: E402
from vidapter.models.vit import BACKBONES, set_recompute  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402

VARIANTS = ("baseline", "vidapter", "recompute-none", "recompute-mlp", "checkpoint", "bf16-frozen", "compile",
            "compile-bf16", "compile-none", "compile-budget", "compile-graphs", "compile-regional", "compile-sdpa",
            "compile-fused", "compile-autotune", "temporal-sdpa", "temporal-math", "cudagraph",
            "no-temporal")  # fmt: skip


def build_pair(preset: str, frames: int, backbone: str | None = None):
    """(vidapter's model, the reference's, frame size, classes) for ``preset`` at ``frames`` frames (``backbone``
    overrides the preset's: tiny_clip for a dry run). The reference gets random non-zero weights (adapters included,
    so every branch counts; norms near 1), frozen as AIM freezes it; vidapter's model loads them through
    ``vidapter convert``'s converter, strictly."""
    overrides = ["model.pretrained=none", f"model.num_frames={frames}"]
    if backbone:
        overrides.append(f"model.backbone={backbone}")
    cfg = apply_overrides(get_preset(preset), overrides).model
    f = BACKBONES[cfg.backbone]
    base = Recognizer3D(
        ViT_CLIP(
            f.image_size,
            frames,
            f.patch_size,
            f.width,
            f.depth,
            f.heads,
            cfg.aim.scale,
            cfg.aim.num_tadapter,
            cfg.drop_path_rate,
        ),  # fmt: skip
        I3DHead(cfg.num_classes, f.width),
    )
    torch.manual_seed(0)
    with torch.no_grad():  # non-zero adapters, so the comparison exercises every branch; norms near 1
        for name, p in base.named_parameters():
            p.normal_(0, 0.02)
            if "ln_" in name and name.endswith("weight"):
                p.add_(1.0)
    freeze_like_aim(base)
    ours = build_model(cfg)
    ours.load_state_dict(aim_official_to_vidapter(base.state_dict()), strict=True)
    return ours, base, f.image_size, cfg.num_classes


def cast_frozen_(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """The baseline's frozen Linear/Conv/attention matrices and frozen embeddings to ``dtype``; norms and trainables
    stay fp32. (vidapter's models use the library's exact ``store_frozen_matrices_``: matrices only.)"""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear | torch.nn.Conv2d | torch.nn.MultiheadAttention):
            for p in m.parameters(recurse=False):
                if not p.requires_grad:
                    p.data = p.data.to(dtype)
    for name, p in model.named_parameters():
        if not p.requires_grad and p.ndim >= 2 and ("pos" in name or "cls" in name or "class_emb" in name):
            p.data = p.data.to(dtype)


class UnderBudget(torch.nn.Module):
    """A compiled model whose compilation (its first call) runs under an activation memory budget."""

    def __init__(self, model: torch.nn.Module, budget: float):
        super().__init__()
        self.compiled, self.budget = torch.compile(model, dynamic=False), budget

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        with torch._functorch.config.patch(activation_memory_budget=self.budget):
            return self.compiled(video)


def variant_model(name: str, ours, base, bf16: bool = True, memory_budget: float = 0.8):
    """(module to move to the device, callable to run) for a variant (``VARIANTS``; vs_baseline.py's docstring says
    what each is); ``ours`` is left as built. ``bf16``: the run's autocast dtype is bf16, so the compile variants
    store frozen matrices in bf16 as the library does. ``memory_budget``: compile-budget's activation_memory_budget."""
    if name == "baseline":
        return base, base
    torch._dynamo.reset()  # else a variant can reuse code compiled for another copy of the same classes
    model = copy.deepcopy(ours)
    if name.startswith("recompute-") or name == "compile-none":
        set_recompute(model, name.split("-", 1)[1])
    elif name == "checkpoint":
        model.grad_checkpointing = True
    elif name == "no-temporal":
        for blk in model.backbone.blocks:
            blk.t_adapter = blk.t_adapter_in = None
    elif name.endswith(("-sdpa", "-math")):
        set_temporal_attention(model, "products" if name.endswith("-math") else "sdpa")
    elif name in ("compile-fused", "compile-autotune"):  # on every device (auto takes products on CUDA only)
        set_temporal_attention(model, "frames")
    if name == "bf16-frozen" or (bf16 and name.startswith("compile-")):  # train.frozen_dtype=auto (exact)
        store_frozen_matrices_(model, torch.bfloat16)
    if name == "compile-regional":
        for blk in model.backbone.blocks:
            blk.compile(dynamic=False)
        return model, model
    if name == "compile-budget":
        return model, UnderBudget(model, memory_budget)
    if name.startswith("compile"):
        mode = {"compile-graphs": "reduce-overhead", "compile-autotune": "max-autotune-no-cudagraphs"}.get(name)
        return model, torch.compile(model, dynamic=False, mode=mode)
    return model, model

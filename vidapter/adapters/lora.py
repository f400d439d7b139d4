"""LoRA on the frozen linear layers of an image ViT, with Hugging Face PEFT's conventions (huggingface/peft at
5d602fdb, ``src/peft/tuners/lora/layer.py``): Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", arXiv
2106.09685.

Each chosen layer computes ``W x + b + (alpha / r) * B(A(dropout(x)))`` with A: Linear(in, r, no bias) initialised
kaiming-uniform (a = sqrt(5)), B: Linear(r, out, no bias) initialised to zeros, so the adapted model equals the image
model at initialisation. The targets are the block's ``qkv`` (q, k and v share one A and one B, as PEFT on timm's fused
projection), ``proj``, ``fc1`` and ``fc2``. LoRA has no temporal modelling of its own: with ``model.adapters`` it
combines with AIM's adapters (``[temporal]``: AIM's temporal pass through the same frozen attention).

Injection keeps the backbone's names; the LoRA weights are ``blocks.{i}.{attn.qkv,attn.proj,mlp.fc1,mlp.fc2}.delta.
lora_{A,B}.weight`` (PEFT saves ``<layer>.lora_{A,B}.weight``: drop ``delta.``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from vidapter.adapters.registry import AdapterModule, Method, register_method
from vidapter.errors import ConfigError
from vidapter.models.vit import Linear, VisionTransformer, rebase, replace_module

TARGETS = {"qkv": ("attn", "qkv"), "proj": ("attn", "proj"), "fc1": ("mlp", "fc1"), "fc2": ("mlp", "fc2")}


class LoRA(AdapterModule, nn.Module):
    """The low-rank update of one linear layer: ``(alpha / r) * B(A(dropout(x)))``, (..., in) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {r}")
        self.lora_A = nn.Linear(in_features, r, bias=False)
        self.lora_B = nn.Linear(r, out_features, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.scaling = alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lora_B(self.lora_A(self.dropout(x))) * self.scaling

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """The (out, in) matrix this update adds to the layer's weight: scaling * B @ A, in fp32 or wider."""
        dtype = torch.promote_types(self.lora_B.weight.dtype, torch.float32)
        return (self.lora_B.weight.to(dtype) @ self.lora_A.weight.to(dtype)) * self.scaling


def apply_lora(
    vit: VisionTransformer,
    *,
    r: int = 8,
    alpha: float = 8.0,
    dropout: float = 0.0,
    targets: tuple[str, ...] = ("qkv", "proj", "fc1", "fc2"),
    layers: list[int] | None = None,
) -> list[str]:
    """Add LoRA to the ``targets`` of every block (or of ``layers``) of ``vit`` in place; returns the names of the LoRA
    parameters, relative to ``vit``. Works on plain blocks and on AIM blocks (which keep the block's attention and MLP).
    """
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise ConfigError(f"LoRA targets must be a non-empty subset of {list(TARGETS)}, got {list(targets)}")
    names = []
    for i in range(len(vit.blocks)) if layers is None else layers:
        blk = vit.blocks[i]
        for t in targets:
            part, attr = TARGETS[t]
            # fc1 is every layer reading the MLP's input: EVA02's SwiGLU has two (fc1_g, fc1_x)
            linears = blk.mlp.inputs() if t == "fc1" else [getattr(getattr(blk, part), attr)]
            for linear in linears:
                lora = LoRA(linear.in_features, linear.out_features, r, alpha, dropout).to(linear.weight.device)
                new = rebase(linear, LoRALinear)
                new.delta = lora
                path = replace_module(blk, linear, new)
                names += [f"blocks.{i}.{path}.delta.{p}" for p, _ in lora.named_parameters()]
    return names


class LoRALinear(Linear):
    """A frozen linear layer with its low-rank update: ``W x + b + delta(x)``. It replaces the layer and keeps its
    ``weight`` and ``bias`` (and their names); ``delta`` is the ``LoRA``."""

    delta: LoRA

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.delta(x)


def lora_modules(model: nn.Module) -> dict[str, LoRA]:
    """Every LoRA update in ``model``, by the name of the module that holds it."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, LoRA)}


@torch.no_grad()
def merge_lora_(model: nn.Module) -> int:
    """Fold every LoRA update into its layer's weight (``W += scaling * B @ A``, summed in fp32) and remove it, in
    place; returns how many were merged. The layer then computes what it computed with the update, up to rounding."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    for module in layers:
        w, update = module.weight, module.delta.merged_weight().to(module.weight.device)
        w.copy_((w.to(update.dtype) + update).to(w.dtype))
        plain = rebase(module, Linear)
        del plain._modules["delta"]
        replace_module(model, module, plain)
    return len(layers)


@dataclass
class LoRAConfig:
    """``model.lora``: PEFT's defaults."""

    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: list(TARGETS))  # of qkv, proj, fc1, fc2

    def __post_init__(self):
        if self.r < 1:
            raise ConfigError(f"model.lora.r must be >= 1, got {self.r}")
        if not self.targets or not set(self.targets) <= set(TARGETS):
            raise ConfigError(f"model.lora.targets must be a non-empty subset of {list(TARGETS)}, got {self.targets}")


def _adapt(vit: VisionTransformer, cfg, layers: list[int]) -> None:
    lora = cfg.lora
    apply_lora(vit, r=lora.r, alpha=lora.alpha, dropout=lora.dropout, targets=tuple(lora.targets), layers=layers)


LORA = register_method(Method(
    name="lora",
    paper="LoRA: Hu et al., ICLR 2022 (arXiv 2106.09685), with PEFT's conventions",
    trains="low-rank updates of the blocks' linear layers (+ AIM's adapters of model.adapters), temporal embedding, "
           "final norm, head",
    adapt=_adapt,
    combines_aim=True,
    merge=merge_lora_,
    info=lambda cfg: ({"r": cfg.lora.r, "alpha": cfg.lora.alpha, "targets": cfg.lora.targets},
                      f"LoRA: r={cfg.lora.r}, alpha={cfg.lora.alpha:g} on {','.join(cfg.lora.targets)} of every block"),
    config=LoRAConfig,
    identity_at_init=True,
))  # fmt: skip

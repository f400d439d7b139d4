"""AdamW with the reference's parameter groups, and a per-step cosine schedule with linear warm-up."""

from __future__ import annotations

import math

import torch
from torch import nn

from vidapter.config import OptimConfig


def no_decay(name: str, p: nn.Parameter) -> bool:
    """Norm weights, biases and embeddings (class, positional, temporal) get no weight decay."""
    return p.ndim <= 1 or name.endswith(("cls_token", "pos_embed", "temporal_embed"))


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Trainable parameters split by (decay, lr multiplier); empty groups are dropped."""
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = cfg.temporal_embed_lr_mult if name.endswith("temporal_embed") else 1.0
        if name.startswith("backbone."):
            mult *= cfg.backbone_lr_mult
        groups.setdefault((not no_decay(name, p), mult), []).append(p)
    return [
        {"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr_mult": mult}
        for (decay, mult), ps in sorted(groups.items())
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_at(step: int, total: int, warmup: int, base: float, start: float) -> float:
    """Linear from ``start * base`` to ``base`` over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return base * (start + (1 - start) * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class CosineWarmup:
    """Sets every group's lr to ``lr_at(step) * lr_mult``; state is just the step."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int):
        self.optimizer, self.base, self.start = optimizer, cfg.lr, cfg.warmup_start
        self.total = steps_per_epoch * epochs
        self.warmup = round(cfg.warmup_epochs * steps_per_epoch)
        self.step_num = 0
        self._apply()

    def _apply(self) -> None:
        lr = lr_at(self.step_num, self.total, self.warmup, self.base, self.start)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)

    @property
    def lr(self) -> float:
        return lr_at(self.step_num, self.total, self.warmup, self.base, self.start)

    def step(self) -> None:
        self.step_num += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"step_num": self.step_num}

    def load_state_dict(self, state: dict) -> None:
        self.step_num = state["step_num"]
        self._apply()

"""AdamW parameter groups and the learning-rate schedule, each as the AIM reference does it or by vidapter's rule.

Weight decay (``optim.decay_groups``):
- ``reference``: the reference configs' ``paramwise_cfg.custom_keys`` with mmcv 1.x semantics. A parameter takes the
  options of the longest key contained in its name in the reference model (ties alphabetical), and nothing else
  applies: names containing ``class_embedding``, ``positional_embedding``, ``ln_1``, ``ln_2``, ``ln_pre`` or
  ``ln_post`` get no decay. Of AIM's trainable tensors that is the final norm alone; adapter biases, the temporal
  embedding and the head decay. The ViT-L configs add the key ``backbone`` (lr x0.1; present here when
  ``optim.backbone_lr_mult`` is not 1): it matches every backbone tensor, the temporal embedding included, and as the
  longer key it also takes ``backbone.ln_post`` back to full decay.
- ``norm_bias_embed``: no decay on tensors of one dimension or less and on the class, positional and temporal
  embeddings; ``backbone_lr_mult`` on ``backbone.*`` names.
- ``norms_embeds`` (ZeroI2V's configs): no decay on norms and on the class, positional and temporal embeddings;
  biases decay.
- ``bias`` (ST-Adapter's code): no decay on biases alone.
- ``none`` (EVL's code): every trainable tensor decays.
Under the last four, ``backbone_lr_mult`` applies to ``backbone.*`` names.

Schedule (``optim.schedule``):
- ``epoch_cosine``: mmcv 1.x ``CosineAnnealing`` updated per epoch (``by_epoch=True``, min 0): constant within epoch
  e at ``0.5 lr (1 + cos(pi e / epochs))``, with a linear warm-up over ``warmup_epochs`` epochs of steps that scales
  that value per step from ``warmup_start``; as mmcv's hook, once the warm-up ends inside an epoch the last warm-up
  value holds until the epoch ends.
- ``step_cosine``: linear warm-up over the steps of ``warmup_epochs``, then cosine per step to ``final_lr`` x lr (0 by
  default).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from vidapter.config import OptimConfig
from vidapter.errors import ConfigError

DECAY_GROUPS = ("reference", "norm_bias_embed", "norms_embeds", "bias", "none")
_EMBEDS = ("cls_token", "pos_embed", "temporal_embed")
SCHEDULES = ("epoch_cosine", "step_cosine")
REFERENCE_NO_DECAY_KEYS = ("class_embedding", "positional_embedding", "ln_1", "ln_2", "ln_pre", "ln_post")

# vidapter (timm) names -> the AIM reference's, for the parts its custom keys read; openai: ViT_CLIP, timm: ViT_ImageNet
_OPENAI_NAMES = [
    (r"^backbone\.cls_token$", "backbone.class_embedding"),
    (r"^backbone\.pos_embed$", "backbone.positional_embedding"),
    (r"^backbone\.norm_pre\.", "backbone.ln_pre."),
    (r"^backbone\.blocks\.(\d+)\.norm1\.", r"backbone.transformer.resblocks.\1.ln_1."),
    (r"^backbone\.blocks\.(\d+)\.norm2\.", r"backbone.transformer.resblocks.\1.ln_2."),
]
_SHARED_NAMES = [
    (r"^backbone\.norm\.", "backbone.ln_post."),  # ViT_ImageNet renames timm's final norm to ln_post as well
    (r"^temporal_embed$", "backbone.temporal_embedding"),
    (r"^head\.fc\.", "cls_head.fc_cls."),
]


def reference_name(name: str, layout: str) -> str:
    """The name a parameter has in the AIM reference's model (as far as its optimizer's keys can tell)."""
    for pattern, repl in (_OPENAI_NAMES if layout == "openai" else []) + _SHARED_NAMES:
        if re.search(pattern, name):
            return re.sub(pattern, repl, name)
    return name


def _reference_keys(cfg: OptimConfig) -> list[tuple[str, dict]]:
    """The reference's custom_keys in mmcv's order of matching: longest first, ties alphabetical."""
    keys = {k: {"decay_mult": 0.0} for k in REFERENCE_NO_DECAY_KEYS}
    if cfg.backbone_lr_mult != 1.0:
        keys["backbone"] = {"lr_mult": cfg.backbone_lr_mult}
    return [(k, keys[k]) for k in sorted(sorted(keys), key=len, reverse=True)]


def _reference_options(name: str, layout: str, cfg: OptimConfig, keys: list[tuple[str, dict]]) -> tuple[float, float]:
    """(weight decay, lr multiplier) by mmcv's DefaultOptimizerConstructor: the first key contained in the name."""
    ref = reference_name(name, layout)
    for key, options in keys:
        if key in ref:
            return cfg.weight_decay * options.get("decay_mult", 1.0), options.get("lr_mult", 1.0)
    return cfg.weight_decay, 1.0


def _vidapter_options(name: str, p: nn.Parameter, cfg: OptimConfig, norms: set[str]) -> tuple[float, float]:
    rule = cfg.decay_groups
    if rule == "norm_bias_embed":
        exempt = p.ndim <= 1 or name.endswith(_EMBEDS)
    elif rule == "norms_embeds":
        exempt = name in norms or name.endswith(_EMBEDS)
    elif rule == "bias":
        exempt = name.endswith(".bias")
    else:
        exempt = False
    return (0.0 if exempt else cfg.weight_decay), (cfg.backbone_lr_mult if name.startswith("backbone.") else 1.0)


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Trainable parameters grouped by (weight decay, lr multiplier), in a fixed order; empty groups are dropped."""
    if cfg.decay_groups not in DECAY_GROUPS:
        raise ConfigError(f"optim.decay_groups must be one of {DECAY_GROUPS}, got {cfg.decay_groups!r}")
    layout, keys = model.backbone.facts.layout, _reference_keys(cfg)
    norms = {f"{m}.{p}" if m else p for m, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)
             for p, _ in mod.named_parameters(recurse=False)}  # fmt: skip
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if cfg.decay_groups == "reference":
            decay, mult = _reference_options(name, layout, cfg, keys)
        else:
            decay, mult = _vidapter_options(name, p, cfg, norms)
        if name.endswith("temporal_embed"):
            mult *= cfg.temporal_embed_lr_mult
        groups.setdefault((decay, mult), []).append(p)
    return [{"params": ps, "weight_decay": decay, "lr_mult": mult} for (decay, mult), ps in sorted(groups.items())]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_at(step: int, total: int, warmup: int, base: float, start: float, end: float = 0.0) -> float:
    """``step_cosine``: linear from ``start * base`` to ``base`` over ``warmup`` steps, then cosine to ``end * base``
    at ``total`` (timm's CosineLRScheduler with ``lr_min = end * base``)."""
    if step < warmup:
        return base * (start + (1 - start) * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base * (end + (1 - end) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def epoch_lr_at(step: int, steps_per_epoch: int, epochs: int, warmup_epochs: float, base: float, start: float) -> float:
    """``epoch_cosine``: mmcv 1.x CosineAnnealingLrUpdaterHook(by_epoch=True, min_lr=0) with warmup='linear',
    warmup_by_epoch=True. ``step`` is the global iteration (mmcv's ``runner.iter``) the rate is used for."""
    epoch = step // steps_per_epoch
    regular = base * 0.5 * (1 + math.cos(math.pi * min(epoch / epochs, 1.0)))
    warmup_iters = warmup_epochs * steps_per_epoch  # a float, as mmcv keeps it
    # the hook sets the regular value at each epoch start, then per iteration: warm-up below warmup_iters, the
    # regular value at exactly warmup_iters, nothing above; the rate in force is the last one set
    last_set = step if step <= warmup_iters else math.floor(warmup_iters)
    if last_set < epoch * steps_per_epoch or last_set == warmup_iters:
        return regular
    k = (1 - last_set / warmup_iters) * (1 - start)
    return regular * (1 - k)


class CosineWarmup:
    """Sets every group's lr to the schedule's value times its ``lr_mult``; state is just the step."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int):
        if cfg.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
        if cfg.final_lr and cfg.schedule != "step_cosine":
            raise ConfigError(f"optim.final_lr={cfg.final_lr} applies to optim.schedule=step_cosine")
        self.optimizer, self.cfg, self.steps_per_epoch, self.epochs = optimizer, cfg, steps_per_epoch, epochs
        self.step_num = 0
        self._apply()

    @property
    def lr(self) -> float:
        c = self.cfg
        if c.schedule == "epoch_cosine":
            return epoch_lr_at(self.step_num, self.steps_per_epoch, self.epochs, c.warmup_epochs, c.lr, c.warmup_start)
        warmup = round(c.warmup_epochs * self.steps_per_epoch)
        return lr_at(self.step_num, self.steps_per_epoch * self.epochs, warmup, c.lr, c.warmup_start, c.final_lr)

    def _apply(self) -> None:
        lr = self.lr
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)

    def step(self) -> None:
        self.step_num += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"step_num": self.step_num}

    def load_state_dict(self, state: dict) -> None:
        self.step_num = state["step_num"]
        self._apply()

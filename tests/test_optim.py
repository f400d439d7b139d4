"""Parameter groups and learning-rate schedules against transcriptions of mmcv 1.x (the AIM reference's optimizer
constructor and LrUpdaterHook), applied to the reference model's own parameter names."""

from __future__ import annotations

import math

import pytest
import torch
from peers import HEADS, PATCH, SIZE, WIDTH
from reference.aim import I3DHead, Recognizer3D, ViT_CLIP

from vidapter.classifier import build_model
from vidapter.config import ModelConfig, OptimConfig
from vidapter.models.convert import aim_official_to_vidapter
from vidapter.optim import CosineWarmup, epoch_lr_at, lr_at, param_groups

CUSTOM_KEYS = {k: {"decay_mult": 0.0} for k in ("class_embedding", "positional_embedding", "ln_1", "ln_2", "ln_pre",
                                                "ln_post")}  # fmt: skip


def _mmcv_options(name: str, custom_keys: dict, base_wd: float) -> tuple[float, float]:
    """mmcv 1.x DefaultOptimizerConstructor.add_params for one parameter: the first key of the sorted list (longest
    first, ties alphabetical) contained in the name decides lr_mult and decay_mult; no other rule is configured."""
    for key in sorted(sorted(custom_keys.keys()), key=len, reverse=True):
        if key in name:
            return base_wd * custom_keys[key].get("decay_mult", 1.0), custom_keys[key].get("lr_mult", 1.0)
    return base_wd, 1.0


def _reference_vidapter_names() -> dict[str, str]:
    """vidapter name -> the reference model's name, through the converter (which maps every reference tensor)."""
    ref = Recognizer3D(ViT_CLIP(SIZE, 4, PATCH, WIDTH, 2, HEADS, 0.5, 2), I3DHead(7, WIDTH))
    sd = {n: torch.full(t.shape, float(i)) for i, (n, t) in enumerate(ref.state_dict().items())}  # tensor i holds i
    names = list(sd)
    return {v: names[int(t.flatten()[0])] for v, t in aim_official_to_vidapter(sd).items()}


def _groups_by_name(model, cfg: OptimConfig) -> dict[str, tuple[float, float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["weight_decay"], g["lr_mult"]) for g in param_groups(model, cfg) for p in g["params"]}


@pytest.mark.parametrize("finetune", ["adapters", "full"])
@pytest.mark.parametrize("backbone_lr_mult", [1.0, 0.1])
def test_reference_groups_equal_mmcv_on_the_reference_names(finetune, backbone_lr_mult):
    """ViT-B configs (no 'backbone' key) and ViT-L configs ('backbone': lr x0.1), AIM's trainable set and full
    fine-tuning: every parameter gets the reference's (weight decay, lr multiplier)."""
    model = build_model(ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=7,
                                    sections={"aim": {"num_tadapter": 2}}, finetune=finetune))  # fmt: skip
    cfg = OptimConfig(backbone_lr_mult=backbone_lr_mult)
    keys = dict(CUSTOM_KEYS, **({"backbone": {"lr_mult": backbone_lr_mult}} if backbone_lr_mult != 1.0 else {}))
    official = _reference_vidapter_names()
    got = _groups_by_name(model, cfg)
    assert set(got) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, options in got.items():
        assert options == _mmcv_options(official[name], keys, 0.05), (name, official[name])


def test_reference_groups_of_aims_trainable_set():
    """In words: ViT-B exempts the final norm alone; ViT-L's 'backbone' key takes it back to decay and scales every
    backbone tensor (the temporal embedding and the adapters included) but not the head."""
    model = build_model(ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=7))
    vitb = _groups_by_name(model, OptimConfig())
    assert {n for n, (wd, _) in vitb.items() if wd == 0} == {"backbone.norm.weight", "backbone.norm.bias"}
    assert vitb["temporal_embed"] == vitb["head.fc.bias"] == vitb["backbone.blocks.0.s_adapter.fc1.bias"] == (0.05, 1)
    vitl = _groups_by_name(model, OptimConfig(backbone_lr_mult=0.1))
    assert all(wd == 0.05 for wd, _ in vitl.values())
    assert {n for n, (_, lr) in vitl.items() if lr == 1.0} == {"head.fc.weight", "head.fc.bias"}
    today = _groups_by_name(model, OptimConfig(decay_groups="norm_bias_embed", backbone_lr_mult=0.1))
    assert today["temporal_embed"] == (0.0, 1.0) and today["backbone.blocks.0.s_adapter.fc1.bias"] == (0.0, 0.1)
    assert today["backbone.blocks.0.s_adapter.fc1.weight"] == (0.05, 0.1) and today["head.fc.weight"] == (0.05, 1.0)


def test_reference_groups_on_the_in21k_backbone():
    """The reference's ViT_ImageNet keeps timm's names (cls_token, pos_embed, norm1, norm2), which no key matches,
    and calls the final norm ln_post."""
    model = build_model(ModelConfig(backbone="tiny_in21k", num_frames=4, num_classes=7, finetune="full"))
    got = _groups_by_name(model, OptimConfig())
    assert {n for n, (wd, _) in got.items() if wd == 0} == {"backbone.norm.weight", "backbone.norm.bias"}


class _MmcvCosineHook:
    """mmcv 1.x CosineAnnealingLrUpdaterHook(by_epoch=True, min_lr=0, warmup='linear', warmup_by_epoch=True,
    warmup_ratio), transcribed: before_train_epoch and before_train_iter set the optimizer's lr."""

    def __init__(self, base: float, epochs: int, warmup_epochs: float, ratio: float):
        self.base, self.epochs, self.warmup_epochs, self.ratio = base, epochs, warmup_epochs, ratio
        self.warmup_iters, self.lr = None, None

    def before_train_epoch(self, epoch: int, epoch_len: int) -> None:
        if self.warmup_iters is None:
            self.warmup_iters = self.warmup_epochs * epoch_len
        end = 0.0
        self.regular_lr = end + 0.5 * (self.base - end) * (math.cos(math.pi * epoch / self.epochs) + 1)
        self.lr = self.regular_lr

    def before_train_iter(self, cur_iter: int) -> None:
        if cur_iter > self.warmup_iters:
            return
        if cur_iter == self.warmup_iters:
            self.lr = self.regular_lr
        else:
            k = (1 - cur_iter / self.warmup_iters) * (1 - self.ratio)
            self.lr = self.regular_lr * (1 - k)


@pytest.mark.parametrize("epoch_len", [8, 7, 1, 3])  # 2.5 x 7 = 17.5: the warm-up ends inside an iteration
def test_epoch_cosine_equals_mmcv_at_every_iteration(epoch_len):
    hook, epochs = _MmcvCosineHook(3e-4, 30, 2.5, 0.1), 30
    for epoch in range(epochs):
        hook.before_train_epoch(epoch, epoch_len)
        for i in range(epoch * epoch_len, (epoch + 1) * epoch_len):
            hook.before_train_iter(i)
            assert epoch_lr_at(i, epoch_len, epochs, 2.5, 3e-4, 0.1) == pytest.approx(hook.lr, rel=1e-12, abs=0), i


def test_epoch_cosine_is_constant_within_an_epoch_after_warm_up():
    values = [epoch_lr_at(i, 10, 30, 2.5, 1.0, 0.1) for i in range(300)]
    assert values[0] == pytest.approx(0.1) and len(set(values[30:40])) == 1
    assert values[110] == pytest.approx(0.5 * (1 + math.cos(math.pi * 11 / 30)))
    # the per-step cosine of step_cosine differs by up to ~8 % of the base lr (at epoch 11 of 30)
    gap = max(abs(v - lr_at(i, 300, 25, 1.0, 0.1)) for i, v in enumerate(values))
    assert 0.07 < gap < 0.09


def test_scheduler_sets_each_group_with_its_multiplier():
    model = build_model(ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=7))
    opt = torch.optim.AdamW(param_groups(model, OptimConfig(backbone_lr_mult=0.1)), lr=1.0)
    sched = CosineWarmup(opt, OptimConfig(lr=1.0, backbone_lr_mult=0.1), steps_per_epoch=4, epochs=10)
    for _ in range(13):
        sched.step()
    want = epoch_lr_at(13, 4, 10, 2.5, 1.0, 0.1)
    assert sorted({round(g["lr"] / want, 9) for g in opt.param_groups}) == [0.1, 1.0]
    with pytest.raises(ValueError, match="optim.schedule must be one of"):
        CosineWarmup(opt, OptimConfig(schedule="linear"), 4, 10)

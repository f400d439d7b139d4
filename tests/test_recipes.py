"""Every preset pinned to its audited recipe (docs/recipes.md): each field below is a line of the reference config
(configs/recognition/vit/*.py of the AIM repository) or a stated deviation, with the value that reproduces it."""

from __future__ import annotations

import pytest

from vidapter.config import flatten
from vidapter.data.build import build_dataset
from vidapter.data.sampling import SeqSegments
from vidapter.presets import FAMILIES, PRESETS, get_preset

CLIP_NORM = {"data.mean": [122.769, 116.74, 104.04], "data.std": [68.493, 66.63, 70.321]}
IMAGENET_NORM = {"data.mean": [123.675, 116.28, 103.53], "data.std": [58.395, 57.12, 57.375]}

# shared by every AIM recipe: the pipelines' resize/crop lines, the optimizer, schedule and runtime settings
COMMON = {
    "data.short_side": 256, "data.area": [0.08, 1.0], "data.size": 224, "data.test_short_side": 224,
    "model.drop_path_rate": 0.2, "model.dropout": 0.5, "model.aim.ratio": 0.25,
    "optim.lr": 3e-4, "optim.betas": [0.9, 0.999], "optim.weight_decay": 0.05, "optim.warmup_epochs": 2.5,
    "optim.warmup_start": 0.1, "optim.decay_groups": "reference", "optim.schedule": "epoch_cosine",
    "optim.clip_grad": None, "optim.mixup": 0.0, "optim.cutmix": 0.0,
    "train.batch_size": 8, "train.accum_steps": 1, "train.eval_every": 5, "data.randaugment_impl": "imgaug",
}  # fmt: skip
K400 = {
    **COMMON, **CLIP_NORM, "model.backbone": "clip_vitb16", "model.num_classes": 400, "model.aim.scale": 0.5,
    "model.aim.num_tadapter": 1, "data.sampling": "dense", "data.test_clips": 3, "data.test_crops": 1, "data.flip": 0.5,
    "data.randaugment": None, "data.erasing": 0.0, "data.color_jitter": None, "optim.label_smoothing": 0.0,
    "optim.backbone_lr_mult": 1.0, "train.epochs": 30,
}  # fmt: skip
SSV2 = {
    **K400, "model.num_classes": 174, "model.aim.scale": 1.0, "model.aim.num_tadapter": 2,
    "data.sampling": "segments_seq", "data.test_clips": 1, "data.test_crops": 3, "data.flip": 0.0,
    "data.randaugment": [4, 7], "data.erasing": 0.25, "optim.label_smoothing": 0.1, "train.epochs": 50,
}  # fmt: skip
DIVING = {**K400, "model.num_classes": 48, "model.num_frames": 32, "data.sampling": "segments_seq",
          "data.test_clips": 1, "data.test_crops": 3, "train.epochs": 50}  # fmt: skip
VITL = {"model.backbone": "clip_vitl14", "model.pretrained": "openai:ViT-L/14"}
JITTER = [0.5, 0.5, 0.5, 0.1]

AUDITED = {
    "k400_vitb16_8f": {**K400, "model.num_frames": 8, "data.frame_interval": 16},
    "k400_vitb16_16f": {**K400, "model.num_frames": 16, "data.frame_interval": 8},
    "k400_vitb16_32f": {**K400, "model.num_frames": 32, "data.frame_interval": 4},
    **{f"k400_vitl14_{t}f": {**K400, **VITL, "model.num_frames": t, "data.frame_interval": 128 // t,
                             "optim.backbone_lr_mult": 0.1, "data.color_jitter": JITTER} for t in (8, 16, 32)},
    "k700_vitb16_8f": {**K400, "model.num_classes": 700, "model.num_frames": 8, "data.test_crops": 3},
    "k700_vitl14_8f": {**K400, **VITL, "model.num_classes": 700, "model.num_frames": 8, "data.test_crops": 3},
    "k700_vitl14_32f": {**K400, **VITL, "model.num_classes": 700, "model.num_frames": 32, "data.frame_interval": 4,
                        "data.test_crops": 3},
    **{f"ssv2_vitb16_{t}f": {**SSV2, "model.num_frames": t} for t in (8, 16, 32)},
    "ssv2_vitl14_8f": {**SSV2, **VITL, "model.num_frames": 8, "optim.backbone_lr_mult": 0.1},  # num_tadapter 2: paper
    "diving48_vitb16_32f": DIVING,
    "diving48_vitl14_32f": {**DIVING, **VITL, "data.test_crops": 1},
    "k400_in21k_vitb16_8f": {**K400, **IMAGENET_NORM, "model.backbone": "in21k_vitb16", "model.num_frames": 8,
                             "data.frame_interval": 16, "model.pretrained": "timm:vit_base_patch16_224_in21k"},
    "ssv2_in21k_vitb16_8f": {**SSV2, **IMAGENET_NORM, "model.backbone": "in21k_vitb16", "model.num_frames": 8,
                             "model.pretrained": "timm:vit_base_patch16_224_in21k"},
    # zero-shot CLIP (no training): ViFi-CLIP's evaluation views (trainers/vificlip.py, datasets/build.py val pipeline)
    "clip_zero_shot": {"model.adapters": [], "model.head": "text", "model.head_train": False, "model.num_frames": 8,
                       "model.templates": None, "data.sampling": "uniform", "data.test_clips": 1, "data.test_crops": 1,
                       "data.test_short_side": 256, "data.size": 224, "data.mean": None, "data.std": None},
    "vifi_zero_shot_32f": {"model.adapters": [], "model.head": "text", "model.num_frames": 32,
                           "model.templates": ["{}"], "data.sampling": "uniform", "data.test_clips": 1,
                           "data.test_crops": 1, "data.test_short_side": 256, "data.size": 224,
                           "data.mean": [123.675, 116.28, 103.53], "data.std": [58.395, 57.12, 57.375]},
}  # fmt: skip


def _flat(cfg) -> dict:
    return flatten(cfg)


def test_every_aim_preset_is_audited():  # the other methods' presets: tests/test_methods.py; families': test_backbones
    families = {f"{d}_{f}_8f" for f in FAMILIES for d in ("k400", "ssv2")}
    assert set(AUDITED) == {n for n in PRESETS if get_preset(n).model.method == "aim"} - {"synthetic"} - families


@pytest.mark.parametrize("name", sorted(AUDITED))
def test_preset_equals_its_audited_recipe(name):
    got = _flat(get_preset(name))
    wrong = {k: (got[k], want) for k, want in AUDITED[name].items() if got[k] != want}
    assert not wrong, wrong


@pytest.mark.parametrize("name", ["ssv2_vitb16_8f", "diving48_vitb16_32f"])
def test_ssv2_and_diving48_datasets_sample_sequence_segments(name, data):
    cfg = get_preset(name)
    cfg.data.train_list = cfg.data.test_list = str(data / "train.txt")
    cfg.data.class_names, cfg.model.num_classes = str(data / "classes.txt"), 13
    for split in ("train", "test"):
        ds, _ = build_dataset(cfg.data, split, num_frames=cfg.model.num_frames, num_classes=13, mean=(0,) * 3,
                              std=(1,) * 3)  # fmt: skip
        assert ds.sampler == SeqSegments(cfg.model.num_frames)


def test_views_are_fused_as_average_clips_prob():
    """test_cfg=dict(average_clips='prob'): softmax per view, then the mean. Two views whose mean logits favour class
    0 but whose mean probabilities favour class 1 tell it from averaging logits."""
    import torch

    from vidapter.evaluation import evaluate

    logits = torch.tensor([[10.0, 0.0, 9.9], [0.0, 3.0, 0.0]])  # mean logits: class 0; mean probs: class 1

    class Views(torch.nn.Module):
        def forward(self, video):
            return logits[video[:, 0, 0, 0, 0].long()]

    video = torch.arange(2.0).view(1, 2, 1, 1, 1, 1).expand(1, 2, 3, 1, 1, 1)  # view v holds the value v
    batch = {"video": video, "label": torch.tensor([1]), "index": torch.tensor([0]), "skipped": []}
    metrics = evaluate(Views(), [batch], device=torch.device("cpu"), num_classes=3, clips=2, crops=1)
    assert metrics["top1"] == 1.0
    want = -torch.log((logits.softmax(-1)[:, 1]).mean()).item()
    assert metrics["loss"] == pytest.approx(want, rel=1e-6)

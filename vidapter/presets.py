"""Named recipes as functions; derived recipes call and edit another.

Every AIM recipe follows the reference's config file line by line (configs/recognition/vit/*.py at the commit named in
docs/recipes.md, which lists each line, the field that reproduces it and the test that pins it, and the few stated
deviations). Dataset paths are the user's: set ``--data.train_list=...``.
"""

from __future__ import annotations

from collections.abc import Callable

from vidapter.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

# Normalize(mean, std) of the reference configs (0-255 scale): CLIP's rounded otherwise than the backbone table's
REFERENCE_CLIP_NORM = ((122.769, 116.74, 104.04), (68.493, 66.63, 70.321))
REFERENCE_IMAGENET_NORM = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))


def _norm(table: tuple) -> dict:
    return {"mean": list(table[0]), "std": list(table[1])}


def k400_vitb16_8f() -> Config:
    """AIM ViT-B/16 (OpenAI CLIP) on Kinetics-400, 8 frames: s = 0.5, one temporal adapter."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8)
    # 8x16, views 8x3x1
    data = DataConfig(sampling="dense", frame_interval=16, test_clips=3, test_crops=1, **_norm(REFERENCE_CLIP_NORM))
    train = TrainConfig(eval_every=5)  # evaluation = dict(interval=5)
    return Config("k400_vitb16_8f", model, data, OptimConfig(), train)


def _frames(cfg: Config, name: str, frames: int) -> Config:
    """Same recipe at another T; dense clips keep their 128-frame span (8x16, 16x8, 32x4)."""
    cfg.name, cfg.model.num_frames = name, frames
    if cfg.data.sampling == "dense":
        cfg.data.frame_interval = 128 // frames
    return cfg


def _vitl14(cfg: Config, name: str, backbone_lr_mult: float = 0.1) -> Config:
    """ViT-L/14; the K400 and SSv2 configs add the custom key ``backbone`` with lr x0.1 (every tensor but the head's),
    the K700 and Diving-48 ones do not."""
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "clip_vitl14", "openai:ViT-L/14"
    cfg.optim.backbone_lr_mult = backbone_lr_mult
    return cfg


def k400_vitb16_16f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_16f", 16)


def k400_vitb16_32f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_32f", 32)


_JITTER = [0.5, 0.5, 0.5, 0.1]  # MMAction2 ColorJitter's defaults: the K400 ViT-L config's dict(type='ColorJitter')


def k400_vitl14_8f() -> Config:
    cfg = _vitl14(k400_vitb16_8f(), "k400_vitl14_8f")
    cfg.data.color_jitter = list(_JITTER)
    return cfg


def k400_vitl14_16f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_16f", 16)


def k400_vitl14_32f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_32f", 32)


def k700_vitb16_8f() -> Config:
    """Kinetics-700: test views T x 3 x 3."""
    cfg = k400_vitb16_8f()
    cfg.name, cfg.model.num_classes, cfg.data.test_crops = "k700_vitb16_8f", 700, 3
    return cfg


def k700_vitl14_8f() -> Config:
    """The K700 ViT-L config at 8 frames: no colour jitter and no backbone lr key there (unlike K400 ViT-L)."""
    return _vitl14(k700_vitb16_8f(), "k700_vitl14_8f", backbone_lr_mult=1.0)


def k700_vitl14_32f() -> Config:
    """vitclip_large_k700.py itself: 32x4 dense, views 32x3x3."""
    return _frames(k700_vitl14_8f(), "k700_vitl14_32f", 32)


def ssv2_vitb16_8f() -> Config:
    """Something-Something v2: 174 classes, s = 1.0, two temporal adapters (T_Adapter_in before T-MSA)."""
    cfg = k400_vitb16_8f()
    cfg.name = "ssv2_vitb16_8f"
    cfg.model.num_classes, cfg.model.scale, cfg.model.num_tadapter = 174, 1.0, 2
    # SlowFast's sequence segments, no flip, RandAugment(4, 7), erasing 0.25; views T x 1 x 3
    cfg.data = DataConfig(sampling="segments_seq", flip=0.0, randaugment=[4, 7], erasing=0.25, test_clips=1,
                          test_crops=3, **_norm(REFERENCE_CLIP_NORM))  # fmt: skip
    cfg.optim.label_smoothing, cfg.train.epochs = 0.1, 50
    return cfg


def ssv2_vitb16_16f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_16f", 16)


def ssv2_vitb16_32f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_32f", 32)


def ssv2_vitl14_8f() -> Config:
    """vitclip_large_sthv2.py, except two temporal adapters as the ViT-B config: the large file sets no num_tadapter
    (so one), but the paper's 50M trainable parameters for this model count two (docs/recipes.md)."""
    return _vitl14(ssv2_vitb16_8f(), "ssv2_vitl14_8f")


def diving48_vitb16_32f() -> Config:
    """Diving-48: 32 sequence segments, flip 0.5; views 32 x 1 x 3 (three crops, as the reference ViT-B config)."""
    cfg = _frames(k400_vitb16_8f(), "diving48_vitb16_32f", 32)
    cfg.model.num_classes = 48
    cfg.data = DataConfig(sampling="segments_seq", flip=0.5, test_clips=1, test_crops=3, **_norm(REFERENCE_CLIP_NORM))
    cfg.train.epochs = 50
    return cfg


def diving48_vitl14_32f() -> Config:
    """ViT-L/14 on Diving-48: views 32 x 1 x 1; no backbone lr key in its config."""
    cfg = _vitl14(diving48_vitb16_32f(), "diving48_vitl14_32f", backbone_lr_mult=1.0)
    cfg.data.test_crops = 1
    return cfg


def _in21k(cfg: Config, name: str) -> Config:
    """vit_imagenet_{k400,ssv2}.py: the same recipe on the IN-21K ViT-B/16 with ImageNet normalisation."""
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "in21k_vitb16", "timm:vit_base_patch16_224_in21k"
    cfg.data.mean, cfg.data.std = _norm(REFERENCE_IMAGENET_NORM).values()
    return cfg


def k400_in21k_vitb16_8f() -> Config:
    return _in21k(k400_vitb16_8f(), "k400_in21k_vitb16_8f")


def ssv2_in21k_vitb16_8f() -> Config:
    return _in21k(ssv2_vitb16_8f(), "ssv2_in21k_vitb16_8f")


def synthetic() -> Config:
    """AIM on the synthetic dataset (``vidapter data synth data/synthetic``) with the demo image ViT that vidapter
    pretrained on synthetic images (``vidapter:demo-vit``, shipped in the package), on CPU in minutes."""
    model = ModelConfig(backbone="demo_vit", pretrained="vidapter:demo-vit", num_frames=8, num_classes=13,
                        drop_path_rate=0.0, dropout=0.0)  # fmt: skip
    data = DataConfig(
        root="data/synthetic",
        train_list="data/synthetic/train.txt",
        val_list="data/synthetic/val.txt",
        test_list="data/synthetic/test.txt",
        class_names="data/synthetic/classes.txt",
        sampling="uniform",
        size=32,
        short_side=36,
        test_short_side=32,
        area=[0.5, 1.0],
        flip=0.0,  # left/right are classes
        test_crops=1,
        # decoded clips stay in memory (128 MB): after the first epoch one loader process only augments, which
        # leaves the model both cores of a 2-core machine (epochs 1.5x faster there, the same clips)
        workers=1,
        cache_decoded=True,
    )
    # A 10x learning rate on the zero-initialised temporal embedding makes order sensitivity start early; vidapter's
    # own decay groups and per-step cosine (short runs: per-epoch steps of the rate would be coarse)
    optim = OptimConfig(lr=1e-3, warmup_epochs=0.5, weight_decay=0.05, temporal_embed_lr_mult=10.0,
                        decay_groups="norm_bias_embed", schedule="step_cosine")  # fmt: skip
    train = TrainConfig(epochs=6, batch_size=16, amp="none", device="cpu", ckpt_every=200, log_every=20)
    return Config("synthetic", model, data, optim, train)


PRESETS: dict[str, Callable[[], Config]] = {
    f.__name__: f
    for f in (
        k400_vitb16_8f,
        k400_vitb16_16f,
        k400_vitb16_32f,
        k400_vitl14_8f,
        k400_vitl14_16f,
        k400_vitl14_32f,
        k700_vitb16_8f,
        k700_vitl14_8f,
        k700_vitl14_32f,
        ssv2_vitb16_8f,
        ssv2_vitb16_16f,
        ssv2_vitb16_32f,
        ssv2_vitl14_8f,
        diving48_vitb16_32f,
        diving48_vitl14_32f,
        k400_in21k_vitb16_8f,
        ssv2_in21k_vitb16_8f,
        synthetic,
    )
}


def list_presets() -> list[str]:
    """The names ``get_preset`` accepts (``vidapter presets`` prints them with their counts)."""
    return list(PRESETS)


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()

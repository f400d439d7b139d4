"""Named recipes (AIM_SPEC section 6) as functions; derived recipes call and edit another.

Model and data sections follow the reference configs (frames x interval, sampling, augmentation, test views);
the optimisation section arrives with the engine. Dataset paths are the user's: set ``--data.train_list=...``.
"""

from __future__ import annotations

from collections.abc import Callable

from vidapter.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig


def k400_vitb16_8f() -> Config:
    """AIM ViT-B/16 (OpenAI CLIP) on Kinetics-400, 8 frames: s = 0.5, one temporal adapter."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8)
    data = DataConfig(sampling="dense", frame_interval=16, test_clips=3, test_crops=1)  # 8x16, views 8x3x1
    return Config("k400_vitb16_8f", model, data)


def _frames(cfg: Config, name: str, frames: int) -> Config:
    """Same recipe at another T; dense clips keep their 128-frame span (8x16, 16x8, 32x4)."""
    cfg.name, cfg.model.num_frames = name, frames
    if cfg.data.sampling == "dense":
        cfg.data.frame_interval = 128 // frames
    return cfg


def _vitl14(cfg: Config, name: str) -> Config:
    """ViT-L/14: backbone lr x0.1 (adapters included, the head not), as the reference configs."""
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "clip_vitl14", "openai:ViT-L/14"
    cfg.optim.backbone_lr_mult = 0.1
    return cfg


def k400_vitb16_16f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_16f", 16)


def k400_vitb16_32f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_32f", 32)


_JITTER = [0.5, 0.5, 0.5, 0.1]  # MMAction2 ColorJitter's defaults: "colour jitter" in the K400/K700 ViT-L row


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
    cfg = _vitl14(k700_vitb16_8f(), "k700_vitl14_8f")
    cfg.data.color_jitter = list(_JITTER)
    return cfg


def ssv2_vitb16_8f() -> Config:
    """Something-Something v2: 174 classes, s = 1.0, two temporal adapters (T_Adapter_in before T-MSA)."""
    cfg = k400_vitb16_8f()
    cfg.name = "ssv2_vitb16_8f"
    cfg.model.num_classes, cfg.model.scale, cfg.model.num_tadapter = 174, 1.0, 2
    # uniform segments, no flip (left/right classes), RandAugment(4, 7), erasing 0.25; views T x 1 x 3
    cfg.data = DataConfig(sampling="uniform", flip=0.0, randaugment=[4, 7], erasing=0.25, test_clips=1, test_crops=3)
    cfg.optim.label_smoothing, cfg.train.epochs = 0.1, 50
    return cfg


def ssv2_vitb16_16f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_16f", 16)


def ssv2_vitb16_32f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_32f", 32)


def ssv2_vitl14_8f() -> Config:
    return _vitl14(ssv2_vitb16_8f(), "ssv2_vitl14_8f")


def diving48_vitb16_32f() -> Config:
    """Diving-48: uniform 32 frames, flip 0.5; views 32 x 1 x 3 (three crops, as the reference ViT-B config)."""
    cfg = _frames(k400_vitb16_8f(), "diving48_vitb16_32f", 32)
    cfg.model.num_classes = 48
    cfg.data = DataConfig(sampling="uniform", flip=0.5, test_clips=1, test_crops=3)
    cfg.train.epochs = 50
    return cfg


def diving48_vitl14_32f() -> Config:
    """ViT-L/14 on Diving-48: views 32 x 1 x 1."""
    cfg = _vitl14(diving48_vitb16_32f(), "diving48_vitl14_32f")
    cfg.data.test_crops = 1
    return cfg


def _in21k(cfg: Config, name: str) -> Config:
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "in21k_vitb16", "timm:vit_base_patch16_224_in21k"
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
        workers=2,
    )
    # A 10x learning rate on the zero-initialised temporal embedding makes order sensitivity start early.
    optim = OptimConfig(lr=1e-3, warmup_epochs=0.5, weight_decay=0.05, temporal_embed_lr_mult=10.0)
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


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()

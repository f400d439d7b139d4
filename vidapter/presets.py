"""Named recipes (AIM_SPEC section 6) as functions; derived recipes call and edit another.

The model section is complete; data and optimisation sections arrive with the engine.
"""

from __future__ import annotations

from collections.abc import Callable

from vidapter.config import Config, ModelConfig


def k400_vitb16_8f() -> Config:
    """AIM ViT-B/16 (OpenAI CLIP) on Kinetics-400, 8 frames: s = 0.5, one temporal adapter."""
    return Config("k400_vitb16_8f", ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8))


def _frames(cfg: Config, name: str, frames: int) -> Config:
    cfg.name, cfg.model.num_frames = name, frames
    return cfg


def _vitl14(cfg: Config, name: str) -> Config:
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "clip_vitl14", "openai:ViT-L/14"
    return cfg


def k400_vitb16_16f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_16f", 16)


def k400_vitb16_32f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_32f", 32)


def k400_vitl14_8f() -> Config:
    return _vitl14(k400_vitb16_8f(), "k400_vitl14_8f")


def k400_vitl14_16f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_16f", 16)


def k400_vitl14_32f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_32f", 32)


def k700_vitb16_8f() -> Config:
    cfg = k400_vitb16_8f()
    cfg.name, cfg.model.num_classes = "k700_vitb16_8f", 700
    return cfg


def k700_vitl14_8f() -> Config:
    return _vitl14(k700_vitb16_8f(), "k700_vitl14_8f")


def ssv2_vitb16_8f() -> Config:
    """Something-Something v2: 174 classes, s = 1.0, two temporal adapters (T_Adapter_in before T-MSA)."""
    cfg = k400_vitb16_8f()
    cfg.name = "ssv2_vitb16_8f"
    cfg.model.num_classes, cfg.model.scale, cfg.model.num_tadapter = 174, 1.0, 2
    return cfg


def ssv2_vitb16_16f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_16f", 16)


def ssv2_vitb16_32f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_32f", 32)


def ssv2_vitl14_8f() -> Config:
    return _vitl14(ssv2_vitb16_8f(), "ssv2_vitl14_8f")


def diving48_vitb16_32f() -> Config:
    cfg = _frames(k400_vitb16_8f(), "diving48_vitb16_32f", 32)
    cfg.model.num_classes = 48
    return cfg


def diving48_vitl14_32f() -> Config:
    return _vitl14(diving48_vitb16_32f(), "diving48_vitl14_32f")


def _in21k(cfg: Config, name: str) -> Config:
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "in21k_vitb16", "timm:vit_base_patch16_224_in21k"
    return cfg


def k400_in21k_vitb16_8f() -> Config:
    return _in21k(k400_vitb16_8f(), "k400_in21k_vitb16_8f")


def ssv2_in21k_vitb16_8f() -> Config:
    return _in21k(ssv2_vitb16_8f(), "ssv2_in21k_vitb16_8f")


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
    )
}


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()

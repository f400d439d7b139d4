"""DINOv3 (Siméoni et al., 2025): rotary positions only, 4 storage tokens, LayerScale, no key bias. Meta's original
files, Hugging Face's, timm's."""

from __future__ import annotations

from dataclasses import replace

from vidapter.models.family import IMAGENET_MEAN, IMAGENET_STD, Family, ViTFacts, Weights, hub, register_family


def dinov3_facts(width: int, depth: int, heads: int, size: int = 224) -> ViTFacts:
    return ViTFacts(width, depth, heads, 16, size, "gelu", 1e-5, False, False, True, IMAGENET_MEAN, IMAGENET_STD,
                    layout="timm", family="dinov3", registers=4, pos_embed="none", layer_scale=True, qkv_bias="qv",
                    rope="dinov3", licence="DINOv3 License")  # fmt: skip


_SIZES = (("s", "small", (384, 12, 6)), ("b", "base", (768, 12, 12)), ("l", "large", (1024, 24, 16)))

DINOV3 = register_family(Family(
    name="dinov3",
    about="DINOv3",
    rows={f"dinov3_vit{s}16": dinov3_facts(*shape) for s, _, shape in _SIZES},
    tiny={"tiny_dinov3": replace(dinov3_facts(64, 2, 4, size=32), patch_size=8)},
    weights={
        **{f"timm:vit_{n}_patch16_dinov3.lvd1689m": Weights(f"dinov3_vit{s}16",
                                                             hub(f"timm/vit_{n}_patch16_dinov3.lvd1689m"))
           for s, n, _ in _SIZES},
        **{f"hf:facebook/dinov3-vit{s}16-pretrain-lvd1689m": Weights(
            f"dinov3_vit{s}16", hub(f"facebook/dinov3-vit{s}16-pretrain-lvd1689m")) for s, _, _ in _SIZES},
    },
    layouts=("dinov3", "hf_dinov3", "timm_eva"),
    timm_architectures=r".+_dinov3(_qkvb)?",
))  # fmt: skip

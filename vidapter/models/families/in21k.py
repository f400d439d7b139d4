"""The ImageNet-21K ViT (Dosovitskiy et al., 2021) the AIM reference also adapts: exact GELU, timm's layout; timm's
port of Google's release and Google's original npz."""

from __future__ import annotations

from vidapter.models.family import IMAGENET_MEAN, IMAGENET_STD, Family, ViTFacts, Weights, register_family


def in21k_facts(width: int, depth: int, heads: int, patch: int, size: int = 224) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-6, False, False, True, IMAGENET_MEAN, IMAGENET_STD,
                    layout="timm", family="in21k", licence="Apache-2.0")  # fmt: skip


IN21K = register_family(Family(
    name="in21k",
    about="ImageNet-21K ViT (Google, timm)",
    rows={"in21k_vitb16": in21k_facts(768, 12, 12, 16)},
    tiny={"tiny_in21k": in21k_facts(64, 2, 4, 8, 32)},
    weights={
        "timm:vit_base_patch16_224_in21k": Weights(
            "in21k_vitb16",
            "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-vitjx/"
            "jx_vit_base_patch16_224_in21k-e5005f0a.pth",
        ),
        "google:ViT-B_16-in21k": Weights(
            "in21k_vitb16", "https://storage.googleapis.com/vit_models/imagenet21k/ViT-B_16.npz"
        ),
    },
    layouts=("timm", "jax_npz"),
    timm_architectures=r"vit_.+_(in21k|augreg.*)",
))  # fmt: skip

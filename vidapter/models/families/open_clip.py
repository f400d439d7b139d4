"""open_clip's LAION-2B and DataComp CLIP (Cherti et al., 2023; Gadre et al., 2023): OpenAI's structure and layout
with exact GELU; open_clip's files, their Hugging Face and timm copies."""

from __future__ import annotations

from dataclasses import replace

from vidapter.models.families.clip import TEXT_B, TEXT_L, TEXT_TINY, clip_facts
from vidapter.models.family import CLIP_MEAN, CLIP_STD, HALF, Family, TextFacts, ViTFacts, Weights, hub, register_family


def _gelu(text: TextFacts) -> TextFacts:
    return replace(text, act="gelu")


def open_clip_facts(width: int, depth: int, heads: int, patch: int, mean=CLIP_MEAN, std=CLIP_STD, **kw) -> ViTFacts:
    return replace(clip_facts(width, depth, heads, patch, **kw), act="gelu", mean=mean, std=std, family="open_clip")


_TIMM = [
    ("laion2b_vitb16", "vit_base_patch16_clip_224.laion2b"),
    ("datacomp_vitb16", "vit_base_patch16_clip_224.datacompxl"),
    ("laion2b_vitl14", "vit_large_patch14_clip_224.laion2b"),
    ("datacomp_vitl14", "vit_large_patch14_clip_224.datacompxl"),
    ("laion2b_vith14", "vit_huge_patch14_clip_224.laion2b"),
    ("laion2b_vitbigg14", "vit_gigantic_patch14_clip_224.laion2b"),
]
_OPEN_CLIP = [
    ("ViT-B-16/laion2b_s34b_b88k", "laion2b_vitb16", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"),
    ("ViT-B-16/datacomp_xl_s13b_b90k", "datacomp_vitb16", "laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K"),
    ("ViT-L-14/laion2b_s32b_b82k", "laion2b_vitl14", "laion/CLIP-ViT-L-14-laion2B-s32B-b82K"),
    ("ViT-L-14/datacomp_xl_s13b_b90k", "datacomp_vitl14", "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"),
    ("ViT-H-14/laion2b_s32b_b79k", "laion2b_vith14", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
    ("ViT-bigG-14/laion2b_s39b_b160k", "laion2b_vitbigg14", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"),
]

OPEN_CLIP = register_family(Family(
    name="open_clip",
    about="open_clip LAION-2B / DataComp CLIP",
    rows={
        "laion2b_vitb16": open_clip_facts(768, 12, 12, 16),
        "datacomp_vitb16": open_clip_facts(768, 12, 12, 16),
        "laion2b_vitl14": open_clip_facts(1024, 24, 16, 14, mean=HALF, std=HALF),
        "datacomp_vitl14": open_clip_facts(1024, 24, 16, 14),
        "laion2b_vith14": open_clip_facts(1280, 32, 16, 14),
        "laion2b_vitbigg14": open_clip_facts(1664, 48, 16, 14, mlp_hidden=8192),
    },
    tiny={"tiny_open_clip": open_clip_facts(64, 2, 4, 8, size=32)},
    weights={
        **{f"timm:{name}": Weights(row, hub(f"timm/{name}")) for row, name in _TIMM},
        **{f"open_clip:{name}": Weights(row, hub(repo, "open_clip_pytorch_model.bin"))
           for name, row, repo in _OPEN_CLIP},
    },
    layouts=("openai", "hf_clip", "timm"),
    timm_architectures=r"vit_.+_clip_(quickgelu_)?\d+(_quickgelu)?",
    gelu_variants=True,
    text={  # open_clip model_configs: the same text towers as OpenAI's with GELU; H/14 and bigG/14 wider
        "laion2b_vitb16": _gelu(TEXT_B), "datacomp_vitb16": _gelu(TEXT_B), "laion2b_vitl14": _gelu(TEXT_L),
        "datacomp_vitl14": _gelu(TEXT_L), "laion2b_vith14": TextFacts(1024, 24, 16, 1024, act="gelu"),
        "laion2b_vitbigg14": TextFacts(1280, 32, 20, 1280, act="gelu"), "tiny_open_clip": _gelu(TEXT_TINY),
    },
))  # fmt: skip

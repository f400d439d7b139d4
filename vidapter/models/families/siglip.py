"""SigLIP and SigLIP 2 (Zhai et al., 2023; Tschannen et al., 2025): no class token, positions for the patches only,
the MAP pooling head; tanh GELU as trained (timm and open_clip run exact GELU on the same weights: at most 4.7e-4
apart per element). Hugging Face's files (SigLIP, SigLIP 2 and NaFlex), timm's, open_clip's timm towers."""

from __future__ import annotations

from vidapter.models.family import HALF, Family, ViTFacts, Weights, hub, register_family


def siglip_facts(width: int, depth: int, heads: int, patch: int, size: int, hidden: int | None = None) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu_tanh", 1e-6, False, False, True, HALF, HALF,
                    layout="timm", family="siglip", mlp_hidden=hidden, class_token=False, pos_embed="patches",
                    pos_resize="bicubic", attn_pool=heads, feature="pool", licence="Apache-2.0")  # fmt: skip


_TIMM = [
    ("siglip_vitb16", "vit_base_patch16_siglip_224.webli"),
    ("siglip_so400m14_384", "vit_so400m_patch14_siglip_384.webli"),
    ("siglip2_vitb16", "vit_base_patch16_siglip_224.v2_webli"),
    ("siglip2_so400m14_378", "vit_so400m_patch14_siglip_378.v2_webli"),
]
_HF = [
    ("google/siglip-base-patch16-224", "siglip_vitb16"),
    ("google/siglip-so400m-patch14-384", "siglip_so400m14_384"),
    ("google/siglip2-base-patch16-224", "siglip2_vitb16"),
]

SIGLIP = register_family(Family(
    name="siglip",
    about="SigLIP / SigLIP 2",
    rows={
        "siglip_vitb16": siglip_facts(768, 12, 12, 16, 224),
        "siglip_so400m14_384": siglip_facts(1152, 27, 16, 14, 384, hidden=4304),
        "siglip2_vitb16": siglip_facts(768, 12, 12, 16, 224),
        "siglip2_so400m14_378": siglip_facts(1152, 27, 16, 14, 378, hidden=4304),
    },
    tiny={"tiny_siglip": siglip_facts(64, 2, 4, 8, 32)},
    weights={
        **{f"timm:{name}": Weights(row, hub(f"timm/{name}")) for row, name in _TIMM},
        **{f"hf:{repo}": Weights(row, hub(repo)) for repo, row in _HF},
    },
    layouts=("hf_siglip", "timm", "open_clip_timm"),
    timm_architectures=r".+_siglip_.+",
))  # fmt: skip

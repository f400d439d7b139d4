"""Perception Encoder Core (Bolya et al., 2025): OpenAI's layout with exact GELU, 2D RoPE beside the learned
positions, an attention pool (8 heads) after ln_post. Meta's ``.pt`` files, timm's, open_clip's timm towers; the
text tower of Meta's CLIP files (OpenAI's names) and open_clip's (under ``text.``).

Its original layout is read from facebookresearch/perception_models at 3e352cca
(``core/vision_encoder/{pe,rope,config}.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch

from vidapter.models.convert import _B, OPENAI, OPENAI_IGNORE, Row, convert, split_clip_visual, split_pool_in_proj
from vidapter.models.family import HALF, Family, TextFacts, ViTFacts, Weights, hub, register_family


def pe_core_facts(width: int, depth: int, heads: int, patch: int, size: int) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-5, False, True, False, HALF, HALF, family="pe_core",
                    pos_resize="bilinear", rope="pe", rope_grid=size // patch, attn_pool=8,
                    licence="Apache-2.0")  # fmt: skip


def pe_core_text(width: int, layers: int, heads: int, embed_dim: int) -> TextFacts:
    """PE-Core's text tower (perception_models ``core/vision_encoder/pe.py`` ``TextTransformer`` with the B/L configs
    of ``config.py``; open_clip's ``PE-Core-*`` ``text_cfg``): CLIP's causal tower with exact GELU and a context of
    32, CLIP's BPE, the feature at the end token; images project from the attention pool's output."""
    return TextFacts(width, layers, heads, embed_dim, context=32, act="gelu", image_feature="pool")


_PE_TEXT_L = pe_core_text(1024, 24, 16, 1024)  # B/16 and L/14 share it

PE_CORE = register_family(Family(
    name="pe_core",
    about="Perception Encoder Core",
    rows={
        "pe_core_vitb16": pe_core_facts(768, 12, 12, 16, 224),
        "pe_core_vitl14_336": pe_core_facts(1024, 24, 16, 14, 336),
    },
    tiny={"tiny_pe_core": replace(pe_core_facts(64, 2, 4, 8, 32), attn_pool=8)},
    weights={
        "timm:vit_pe_core_base_patch16_224.fb": Weights("pe_core_vitb16",
                                                        hub("timm/vit_pe_core_base_patch16_224.fb")),
        "timm:vit_pe_core_large_patch14_336.fb": Weights("pe_core_vitl14_336",
                                                         hub("timm/vit_pe_core_large_patch14_336.fb")),
        **{f"pe:{name}": Weights(row, hub(f"facebook/{name}", f"{name}.pt"))
           for name, row in (("PE-Core-B16-224", "pe_core_vitb16"), ("PE-Core-L14-336", "pe_core_vitl14_336"))},
    },
    layouts=("pe", "timm", "open_clip_timm"),
    timm_architectures=r"vit_pe_core_.+",
    text={"pe_core_vitb16": _PE_TEXT_L, "pe_core_vitl14_336": _PE_TEXT_L, "tiny_pe_core": pe_core_text(32, 1, 2, 32)},
))  # fmt: skip


# Its own releases' layouts: tables and converters (models/layouts.py recognises them, in its order).
Tensor = torch.Tensor

# PE originals (``facebook/PE-Core-*/<name>.pt``): OpenAI CLIP's layout, LayerScale in PE-Lang/Spatial, and the
# attention pool (probe, nn.MultiheadAttention with its own head count, layernorm, mlp) that timm calls
# AttentionPoolLatent. RoPE lives in a plain Python object (Rope2D), so the files hold no rope tensors.
PE: list[Row] = [
    *OPENAI,
    (r"transformer\.resblocks\.(\d+)\.ls_([12])\.gamma", r"blocks.\1.ls\2.gamma", None),
    (r"attn_pool\.probe", "attn_pool.latent", None),
    (rf"attn_pool\.attn\.in_proj_{_B}", r"attn_pool.in_proj.\1", None),  # split by split_pool_in_proj
    (rf"attn_pool\.attn\.out_proj\.{_B}", r"attn_pool.proj.\1", None),
    (rf"attn_pool\.layernorm\.{_B}", r"attn_pool.norm.\1", None),
    (rf"attn_pool\.mlp\.c_fc\.{_B}", r"attn_pool.mlp.fc1.\1", None),
    (rf"attn_pool\.mlp\.c_proj\.{_B}", r"attn_pool.mlp.fc2.\1", None),
]


def pe_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Perception Encoder original (``<name>.pt``, full CLIP or image tower, with or without ``visual.``) ->
    canonical names; the attention pool's in_proj is split into q and kv, ``proj`` is dropped."""
    fmt = "pe (under 'visual.')" if any(k.startswith("visual.") for k in state_dict) else "pe"
    return split_pool_in_proj(convert(split_clip_visual(state_dict, "pe"), PE, OPENAI_IGNORE, fmt), fmt)


def is_pe(keys: set[str]) -> bool:
    return bool({"attn_pool.probe", "visual.attn_pool.probe"} & keys and {"conv1.weight", "visual.conv1.weight"} & keys)

"""EVA02-CLIP (Sun et al., 2023): q and v biases, sub-LN in attention and MLP, SwiGLU (8/3), 2D RoPE beside the
learned positions. The EVA-CLIP originals, timm's files, open_clip's timm towers.

Its original layout is read from baaivision/EVA at 5623d08b
(``EVA-CLIP/rei/eva_clip/{eva_vit_model,model,factory,rope}.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vidapter.models.convert import _B, Fuse, Row, convert
from vidapter.models.convert_upstream import BLK, TEXT_KEYS, image_tower, with_qkv_bias
from vidapter.models.family import CLIP_MEAN, CLIP_STD, Family, TextFacts, ViTFacts, Weights, hub, register_family


def eva02_facts(width: int, depth: int, heads: int, patch: int, size: int, rope_grid: int = 16) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "silu", 1e-6, False, False, True, CLIP_MEAN, CLIP_STD,
                    layout="timm", family="eva02", mlp="swiglu_subln", mlp_hidden=int(width * 8 / 3),
                    pos_resize="bicubic", qkv_bias="qv", attn_norm=True, rope="eva02", rope_grid=rope_grid)  # fmt: skip


_TIMM = [
    ("eva02_clip_vitb16", "eva02_base_patch16_clip_224.merged2b"),
    ("eva02_clip_vitl14", "eva02_large_patch14_clip_224.merged2b"),
    ("eva02_clip_vitl14_336", "eva02_large_patch14_clip_336.merged2b"),
]
_EVA = [
    ("EVA02_CLIP_B_psz16_s8B", "eva02_clip_vitb16"),
    ("EVA02_CLIP_L_psz14_s4B", "eva02_clip_vitl14"),
    ("EVA02_CLIP_L_336_psz14_s6B", "eva02_clip_vitl14_336"),
]

# The text towers of the releases (open_clip model_configs EVA02-B-16/L-14/L-14-336; EVA-CLIP's CustomCLIP: "text."):
# OpenAI's text transformer with GELU; the image projection is the visual head, a Linear with bias
_TEXT_B = TextFacts(512, 12, 8, 512, act="gelu", image_proj_bias=True)
_TEXT_L = TextFacts(768, 12, 12, 768, act="gelu", image_proj_bias=True)

EVA02 = register_family(Family(
    name="eva02",
    about="EVA02-CLIP",
    rows={
        "eva02_clip_vitb16": eva02_facts(768, 12, 12, 16, 224),
        "eva02_clip_vitl14": eva02_facts(1024, 24, 16, 14, 224),
        "eva02_clip_vitl14_336": eva02_facts(1024, 24, 16, 14, 336),
    },
    tiny={"tiny_eva02": eva02_facts(64, 2, 4, 8, 32, rope_grid=4)},
    weights={
        **{f"timm:{name}": Weights(row, hub(f"timm/{name}")) for row, name in _TIMM},
        **{f"eva:{name}": Weights(row, hub("QuanSun/EVA-CLIP", f"{name}.pt")) for name, row in _EVA},
    },
    layouts=("eva_clip", "timm_eva", "open_clip_timm"),
    timm_architectures=r"eva02_.+_clip_.+",
    text={"eva02_clip_vitb16": _TEXT_B, "eva02_clip_vitl14": _TEXT_L, "eva02_clip_vitl14_336": _TEXT_L,
          "tiny_eva02": TextFacts(32, 1, 2, 32, act="gelu", image_proj_bias=True)},
))  # fmt: skip


# Its own releases' layouts: tables and converters (models/layouts.py recognises them, in its order).
Tensor = torch.Tensor

# EVA-CLIP originals (``QuanSun/EVA-CLIP`` ``EVA02_CLIP_*.pt``, ``EVAVisionTransformer``): q_bias/v_bias beside
# q_proj/k_proj/v_proj (subln) or a fused qkv (EVA01), inner_attn_ln, SwiGLU w1 (the SiLU gate) / w2 / ffn_ln / w3.
EVA_CLIP: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"pos_embed", "pos_embed", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"{BLK}(norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (rf"{BLK}attn\.qkv\.weight", r"blocks.\1.attn.qkv.weight", None),
    *[(rf"{BLK}attn\.{c}_proj\.weight", r"blocks.\1.attn.qkv.weight", Fuse(i, 3)) for i, c in enumerate("qkv")],
    *[(rf"{BLK}attn\.{c}_bias", r"blocks.\1.attn.qkv.bias", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (rf"{BLK}attn\.inner_attn_ln\.{_B}", r"blocks.\1.attn.norm.\2", None),
    (rf"{BLK}mlp\.w1\.{_B}", r"blocks.\1.mlp.fc1_g.\2", None),
    (rf"{BLK}mlp\.w2\.{_B}", r"blocks.\1.mlp.fc1_x.\2", None),
    (rf"{BLK}mlp\.ffn_ln\.{_B}", r"blocks.\1.mlp.norm.\2", None),
    (rf"{BLK}mlp\.w3\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"{BLK}gamma_([12])", r"blocks.\1.ls\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
# ``head`` is the image-to-text projection (a Linear with bias); the RoPE tables are persistent buffers, saved once
# for the model and once more under every block (one shared module).
EVA_CLIP_IGNORE = [r"head\.(weight|bias)", r"rope\.freqs_(cos|sin)", r"blocks\.\d+\.attn\.rope\.freqs_(cos|sin)"]


# Keys only an EVA-CLIP original writes (block 0, or the RoPE table).
_EVA_CLIP_MARKERS = ("blocks.0.attn.inner_attn_ln.weight", "blocks.0.mlp.w1.weight", "rope.freqs_cos")


def eva_clip_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """EVA-CLIP original (``EVA02_CLIP_*.pt``, full CLIP or image tower) -> canonical names (k bias zero)."""
    tower, fmt = image_tower(state_dict, "visual.", [TEXT_KEYS], "eva_clip")
    return convert(with_qkv_bias(tower), EVA_CLIP, EVA_CLIP_IGNORE, fmt)


def is_eva_clip(keys: set[str]) -> bool:
    if {"visual.patch_embed.proj.weight", "visual.blocks.0.attn.q_bias"} <= keys:
        return True
    return "blocks.0.attn.q_bias" in keys and any(m in keys for m in _EVA_CLIP_MARKERS)

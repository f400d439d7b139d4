"""EVA02-CLIP (Sun et al., 2023): q and v biases, sub-LN in attention and MLP, SwiGLU (8/3), 2D RoPE beside the
learned positions. The EVA-CLIP originals, timm's files, open_clip's timm towers."""

from __future__ import annotations

from vidapter.models.family import CLIP_MEAN, CLIP_STD, Family, ViTFacts, Weights, hub, register_family


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
))  # fmt: skip

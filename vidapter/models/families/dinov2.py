"""DINOv2 (Oquab et al., 2024), with and without registers (Darcet et al., 2024): LayerScale, positions for 518 px
resampled as its own code does, registers without position, the SwiGLU giant. Meta's original files, Hugging
Face's, timm's.

Its original layout is read from facebookresearch/dinov2 at b8931f7b (``dinov2/models/vision_transformer.py``,
``BlockChunk``; ``dinov2/layers/{swiglu_ffn,layer_scale,block}.py``; ``dinov2/hub/backbones.py``); the Hugging Face
layout was checked against transformers 5.24.0 (``Dinov2Model``, GELU and SwiGLU, ``Dinov2WithRegistersModel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch

from vidapter.models.convert import _B, Fuse, Row, convert, fold_cls_position
from vidapter.models.family import IMAGENET_MEAN, IMAGENET_STD, Family, ViTFacts, Weights, hub, register_family


def dinov2_facts(width: int, depth: int, heads: int, registers: int = 0, swiglu: bool = False,
                 size: int = 518) -> ViTFacts:  # fmt: skip
    return ViTFacts(width, depth, heads, 14, size, "silu" if swiglu else "gelu", 1e-6, False, False, True,
                    IMAGENET_MEAN, IMAGENET_STD, layout="timm", family="dinov2",
                    mlp="swiglu_packed" if swiglu else "plain", mlp_hidden=4096 if swiglu else None,
                    registers=registers, pos_embed="patches" if registers else "cls",
                    pos_resize="dinov2_reg" if registers else "dinov2", layer_scale=True,
                    licence="Apache-2.0")  # fmt: skip


_SIZES = (("s", "small"), ("b", "base"), ("l", "large"), ("g", "giant"))
_SHAPES = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "g": (1536, 40, 24)}

DINOV2 = register_family(Family(
    name="dinov2",
    about="DINOv2, with and without registers",
    rows={
        **{f"dinov2_vit{s}14": dinov2_facts(*_SHAPES[s], swiglu=s == "g") for s, _ in _SIZES},
        **{f"dinov2_vit{s}14_reg": dinov2_facts(*_SHAPES[s], registers=4, swiglu=s == "g") for s, _ in _SIZES},
    },
    tiny={
        "tiny_dinov2": replace(dinov2_facts(64, 2, 4, size=32), patch_size=8),
        "tiny_dinov2_reg": replace(dinov2_facts(64, 2, 4, registers=4, size=32), patch_size=8),
        "tiny_dinov2_swiglu": replace(dinov2_facts(64, 2, 4, swiglu=True, size=32), patch_size=8, mlp_hidden=168),
    },
    weights={
        **{f"timm:vit_{n}_patch14{t}_dinov2.lvd142m": Weights(f"dinov2_vit{s}14{r}",
                                                               hub(f"timm/vit_{n}_patch14{t}_dinov2.lvd142m"))
           for s, n in _SIZES for r, t in (("", ""), ("_reg", "_reg4"))},
        **{f"hf:facebook/dinov2-{n}": Weights(f"dinov2_vit{s}14", hub(f"facebook/dinov2-{n}")) for s, n in _SIZES},
        **{f"hf:facebook/dinov2-with-registers-{n}": Weights(f"dinov2_vit{s}14_reg",
                                                             hub(f"facebook/dinov2-with-registers-{n}"))
           for s, n in _SIZES},
        **{f"dinov2:dinov2_vit{s}14{reg}": Weights(
            f"dinov2_vit{s}14{'_reg' if reg else ''}",
            f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{s}14/dinov2_vit{s}14{reg}_pretrain.pth")
           for s in "sblg" for reg in ("", "_reg4")},
    },
    layouts=("dinov2", "hf_dinov2", "timm"),
    timm_architectures=r".+_dinov2",
))  # fmt: skip


# Its own releases' layouts: tables and converters (models/layouts.py recognises them, in its order).
Tensor = torch.Tensor

# DINOv2 originals (torch.hub ``dinov2_vit*14[_reg]``). Hub models are built with block_chunks=0: ``blocks.N.``. The
# training checkpoints use FSDP chunks, ``blocks.<chunk>.N.`` where N is already the global index (each BlockChunk is
# padded with Identity modules in front), so the chunk number is dropped.
_CHUNKED = r"blocks\.(?:\d+\.)?(\d+)\."
DINOV2: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"register_tokens", "reg_token", None),
    (r"pos_embed", "pos_embed", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"{_CHUNKED}(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (rf"{_CHUNKED}mlp\.w12\.{_B}", r"blocks.\1.mlp.fc1.\2", None),  # ViT-g SwiGLUFFNFused: silu(x1) * x2
    (rf"{_CHUNKED}mlp\.w3\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"{_CHUNKED}(ls[12])\.gamma", r"blocks.\1.\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
DINOV2_IGNORE = [r"mask_token"]


def dinov2_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv2 original (torch.hub, or FSDP-chunked blocks) -> canonical names, the CLS position folded with
    registers."""
    return fold_cls_position(convert(state_dict, DINOV2, DINOV2_IGNORE, "dinov2"), "dinov2")


def is_dinov2(keys: set[str]) -> bool:
    return "mask_token" in keys and bool({"blocks.0.ls1.gamma", "blocks.0.0.ls1.gamma"} & keys) and "pos_embed" in keys


# Dinov2Model / Dinov2WithRegistersModel. Files: attention.attention.{query,key,value}, attention.output.dense,
# mlp.weights_in/weights_out (SwiGLU); transformers 5 state_dict(): attention.{q,k,v,o}_proj and
# mlp.{gate,up,down}_proj, where gate_proj/up_proj are the two halves of weights_in (hidden = silu(gate) * up).
_D2 = r"encoder\.layer\.(\d+)\."
HF_DINOV2: list[Row] = [
    (r"embeddings\.cls_token", "cls_token", None),
    (r"embeddings\.register_tokens", "reg_token", None),
    (r"embeddings\.position_embeddings", "pos_embed", None),
    (rf"embeddings\.patch_embeddings\.projection\.{_B}", r"patch_embed.proj.\1", None),
    (_D2 + rf"norm([12])\.{_B}", r"blocks.\1.norm\2.\3", None),
    *[
        (_D2 + rf"attention\.(?:attention\.{long}|{c}_proj)\.{_B}", r"blocks.\1.attn.qkv.\2", Fuse(i, 3))
        for i, (c, long) in enumerate(zip("qkv", ("query", "key", "value"), strict=True))
    ],
    (_D2 + rf"attention\.(?:output\.dense|o_proj)\.{_B}", r"blocks.\1.attn.proj.\2", None),
    (_D2 + r"layer_scale([12])\.lambda1", r"blocks.\1.ls\2.gamma", None),
    (_D2 + rf"mlp\.fc([12])\.{_B}", r"blocks.\1.mlp.fc\2.\3", None),
    (_D2 + rf"mlp\.weights_in\.{_B}", r"blocks.\1.mlp.fc1.\2", None),
    *[(_D2 + rf"mlp\.{c}_proj\.{_B}", r"blocks.\1.mlp.fc1.\2", Fuse(i, 2)) for i, c in enumerate(("gate", "up"))],
    (_D2 + rf"mlp\.(?:weights_out|down_proj)\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"layernorm\.{_B}", r"norm.\1", None),
]
HF_DINOV2_IGNORE = [r"embeddings\.mask_token"]


def hf_dinov2_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """HF ``Dinov2Model`` or ``Dinov2WithRegistersModel`` -> canonical names; with registers (``register_tokens``
    present) the CLS position is folded into ``cls_token``."""
    return fold_cls_position(convert(state_dict, HF_DINOV2, HF_DINOV2_IGNORE, "hf_dinov2"), "hf_dinov2")


def is_hf_dinov2(keys: set[str]) -> bool:
    return "embeddings.patch_embeddings.projection.weight" in keys and "encoder.layer.0.layer_scale1.lambda1" in keys

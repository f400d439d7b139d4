"""DINOv3 (Siméoni et al., 2025): rotary positions only, 4 storage tokens, LayerScale, no key bias. Meta's original
files, Hugging Face's, timm's.

Its original layout is read from facebookresearch/dinov3 at 6876159a (``dinov3/models/vision_transformer.py``,
``dinov3/layers/{attention,ffn_layers,rope_position_encoding}.py``, ``dinov3/hub/backbones.py``); the Hugging Face
layout was checked against transformers 5.24.0 (``DINOv3ViTModel``, plain and gated MLP).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

import torch

from vidapter.models.convert import _B, ConversionError, Fuse, Row, convert
from vidapter.models.convert_upstream import BLK, with_qkv_bias
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


# Its own releases' layouts: tables and converters (models/layouts.py recognises them, in its order).
Tensor = torch.Tensor

# DINOv3 originals (torch.hub ``dinov3_vit*16*``): storage tokens, RoPE only, k-masked qkv bias (applied before).
DINOV3: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"storage_tokens", "reg_token", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"{BLK}(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (rf"{BLK}mlp\.w1\.{_B}", r"blocks.\1.mlp.fc1_g.\2", None),  # SwiGLUFFN (S+, H+, 7B): silu(w1 x) * w2 x
    (rf"{BLK}mlp\.w2\.{_B}", r"blocks.\1.mlp.fc1_x.\2", None),
    (rf"{BLK}mlp\.w3\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"{BLK}(ls[12])\.gamma", r"blocks.\1.\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
# ``local_cls_norm`` (ViT-L SAT-493M, 7B) is applied only to local crops in training. ``cls_norm`` (untied CLS norm)
# is used at inference and has no canonical name: it raises.
DINOV3_IGNORE = [r"mask_token", r"rope_embed\.periods", r"local_cls_norm\.(weight|bias)"]


def _apply_bias_mask(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv3's ``LinearKMaskedBias``: keep ``bias * bias_mask`` (what the model computes with), drop the mask."""
    out = dict(sd)
    for key, mask in sd.items():
        if key.endswith(".bias_mask"):
            bias = key[: -len("_mask")]
            if bias not in sd:
                raise ConversionError(f"dinov3: {key!r} has no {bias!r} to mask")
            out[bias] = sd[bias] * mask.to(sd[bias].dtype)
            del out[key]
    return out


def dinov3_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv3 original (torch.hub) -> canonical names (the k bias masked to zero)."""
    return convert(with_qkv_bias(_apply_bias_mask(state_dict)), DINOV3, DINOV3_IGNORE, "dinov3")


def is_dinov3(keys: set[str]) -> bool:
    return "storage_tokens" in keys and "blocks.0.attn.qkv.weight" in keys


# DINOv3ViTModel. Files: layer.N.*; transformers 5 state_dict(): model.layer.N.*. The k projection has no bias
# (key_bias=False) and gets a zero one from _zero_absent_qkv_bias. The plain MLP's up_proj is fc1; the gated MLP
# (S+, H+, 7B: act(gate_proj) * up_proj) is packed as fc1 = [gate; up], so up_proj's row depends on the MLP type.
_D3 = r"(?:model\.)?layer\.(\d+)\."
_HF_DINOV3_COMMON: list[Row] = [
    (r"embeddings\.cls_token", "cls_token", None),
    (r"embeddings\.register_tokens", "reg_token", None),
    (rf"embeddings\.patch_embeddings\.{_B}", r"patch_embed.proj.\1", None),
    (_D3 + rf"norm([12])\.{_B}", r"blocks.\1.norm\2.\3", None),
    *[(_D3 + rf"attention\.{c}_proj\.{_B}", r"blocks.\1.attn.qkv.\2", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (_D3 + rf"attention\.o_proj\.{_B}", r"blocks.\1.attn.proj.\2", None),
    (_D3 + r"layer_scale([12])\.lambda1", r"blocks.\1.ls\2.gamma", None),
    (_D3 + rf"mlp\.down_proj\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
HF_DINOV3: list[Row] = [*_HF_DINOV3_COMMON, (_D3 + rf"mlp\.up_proj\.{_B}", r"blocks.\1.mlp.fc1.\2", None)]
HF_DINOV3_GATED: list[Row] = [
    *_HF_DINOV3_COMMON,
    *[(_D3 + rf"mlp\.{c}_proj\.{_B}", r"blocks.\1.mlp.fc1.\2", Fuse(i, 2)) for i, c in enumerate(("gate", "up"))],
]
HF_DINOV3_IGNORE = [r"embeddings\.mask_token", r"rope_embeddings\.inv_freq"]


def _zero_absent_qkv_bias(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv3 has no k bias (the original masks it) and, with ``query_bias``/``value_bias`` off, no q or v bias: give
    each such projection a zero bias so that ``attn.qkv.bias`` is always [q; k; v]. A zero bias is no bias, and a key
    bias would anyway cancel in the softmax, so this is exact."""
    out = dict(sd)
    for key, w in sd.items():
        m = re.fullmatch(r"((?:model\.)?layer\.\d+\.attention\.[qkv]_proj\.)weight", key)
        if m and m[1] + "bias" not in sd:
            out[m[1] + "bias"] = w.new_zeros(w.shape[0])
    return out


def hf_dinov3_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """HF ``DINOv3ViTModel`` -> canonical names: q/k/v fused with a zero k bias, a gated MLP packed as fc1 =
    [gate; up], no position table (RoPE only; its ``inv_freq`` buffer is dropped). A model built without registers
    stores an empty (1, 0, D) ``register_tokens``, which is dropped."""
    gated = any(re.fullmatch(_D3 + r"mlp\.gate_proj\.weight", k) for k in state_dict)
    table = HF_DINOV3_GATED if gated else HF_DINOV3
    out = convert(_zero_absent_qkv_bias(state_dict), table, HF_DINOV3_IGNORE, "hf_dinov3")
    if "reg_token" in out and out["reg_token"].shape[1] == 0:
        del out["reg_token"]
    return out


def is_hf_dinov3(keys: set[str]) -> bool:
    return "embeddings.patch_embeddings.weight" in keys and bool(
        keys & {"layer.0.layer_scale1.lambda1", "model.layer.0.layer_scale1.lambda1"}
    )

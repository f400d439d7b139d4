"""Pure state-dict converters from Hugging Face ``transformers`` layouts to vidapter's canonical (timm) names.

Families: SigLIP and SigLIP 2 (``SiglipVisionModel``, the vision tower of a full ``SiglipModel`` file, and the NaFlex
``Siglip2VisionModel``, whose Linear patch embedding becomes the equivalent conv kernel), DINOv2 with and without
registers (``Dinov2Model``, ``Dinov2WithRegistersModel``, SwiGLU ``-giant`` included) and DINOv3 ViT
(``DINOv3ViTModel``, plain and gated MLP). The open_clip LAION CLIP in HF layout is ``convert.HF_CLIP``.

Each family accepts both names a checkpoint can carry: the names in the published ``model.safetensors`` files and the
names ``state_dict()`` returns in transformers 5.x, which renames some keys at load time (``conversion_mapping.py``).
The table rows list both spellings; everything else follows ``convert.py``: one declarative table per format, an
explicit ignore list, unknown keys raise ``ConversionError``. The few steps that need more than one key at a time
(zero q/k/v biases, DINOv2-reg's class-position fold, splitting SigLIP's fused pooling projection) are small named
functions run before or after the table.

Checked against transformers 5.24.0: tiny random ``SiglipVisionModel``, ``SiglipModel``, ``Siglip2VisionModel``,
``Dinov2Model`` (GELU and SwiGLU), ``Dinov2WithRegistersModel`` and ``DINOv3ViTModel`` (plain and gated MLP, 4
registers), converted and loaded into the matching timm 1.0.31 model, give the same pooled feature to 1e-5 in fp32
(tests/models/test_convert_hf.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch

from vidapter.models.convert import (
    _B,
    ConversionError,
    Fuse,
    Row,
    _as_pos,
    convert,
    fold_cls_position,
    split_pool_in_proj,
)

Tensor = torch.Tensor


def _patch_kernel(t: Tensor) -> Tensor:
    """SigLIP's conv kernel (D, 3, p, p) as is; SigLIP 2 NaFlex's Linear (D, p*p*3) on patches flattened in
    (row, column, channel) order (``convert_image_to_patches`` in transformers) as the same conv kernel (D, 3, p, p)."""
    if t.ndim == 4:
        return t
    p = math.isqrt(t.shape[-1] // 3)
    if t.ndim != 2 or 3 * p * p != t.shape[1]:
        shape = tuple(t.shape)
        raise ConversionError(f"hf_siglip: patch embedding {shape} is neither (D, 3, p, p) nor NaFlex's (D, p*p*3)")
    return t.reshape(t.shape[0], p, p, 3).permute(0, 3, 1, 2)


# SiglipVisionModel / Siglip2VisionModel (no prefix) and the vision tower of a SiglipModel / Siglip2Model file
# (``vision_model.``; transformers 5 strips that prefix when it loads a full file into the vision-only class).
_SV = r"(?:vision_model\.)?"
_SL = _SV + r"encoder\.layers\.(\d+)\."
HF_SIGLIP: list[Row] = [
    (_SV + r"embeddings\.patch_embedding\.weight", "patch_embed.proj.weight", _patch_kernel),
    (_SV + r"embeddings\.patch_embedding\.bias", "patch_embed.proj.bias", None),
    (_SV + r"embeddings\.position_embedding\.weight", "pos_embed", _as_pos),
    *[(_SL + rf"self_attn\.{c}_proj\.{_B}", r"blocks.\1.attn.qkv.\2", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (_SL + rf"self_attn\.out_proj\.{_B}", r"blocks.\1.attn.proj.\2", None),
    (_SL + rf"layer_norm([12])\.{_B}", r"blocks.\1.norm\2.\3", None),
    (_SL + rf"mlp\.fc([12])\.{_B}", r"blocks.\1.mlp.fc\2.\3", None),
    (_SV + rf"post_layernorm\.{_B}", r"norm.\1", None),
    # MAP head -> timm AttentionPoolLatent; the fused in_proj rows [q; k; v] are split by split_pool_in_proj
    (_SV + r"head\.probe", "attn_pool.latent", None),
    (_SV + r"head\.attention\.in_proj_(weight|bias)", r"attn_pool.in_proj.\1", None),
    (_SV + rf"head\.attention\.out_proj\.{_B}", r"attn_pool.proj.\1", None),
    (_SV + rf"head\.layernorm\.{_B}", r"attn_pool.norm.\1", None),
    (_SV + rf"head\.mlp\.fc([12])\.{_B}", r"attn_pool.mlp.fc\1.\2", None),
]
HF_SIGLIP_IGNORE = [
    _SV + r"embeddings\.position_ids",  # a buffer older files carry
    r"text_model\..+",
    r"logit_scale",
    r"logit_bias",
]

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


def hf_siglip_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """HF ``SiglipVisionModel`` / ``Siglip2VisionModel`` (NaFlex) or a full ``SiglipModel`` file -> canonical names,
    q/k/v fused into ``attn.qkv``, the MAP head as ``attn_pool.*``. The text tower is dropped."""
    return split_pool_in_proj(convert(state_dict, HF_SIGLIP, HF_SIGLIP_IGNORE, "hf_siglip"), "hf_siglip")


def hf_dinov2_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """HF ``Dinov2Model`` or ``Dinov2WithRegistersModel`` -> canonical names; with registers (``register_tokens``
    present) the CLS position is folded into ``cls_token``."""
    return fold_cls_position(convert(state_dict, HF_DINOV2, HF_DINOV2_IGNORE, "hf_dinov2"), "hf_dinov2")


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


HF_FORMATS: dict[str, Callable[[Mapping[str, Tensor]], dict[str, Tensor]]] = {
    "hf_siglip": hf_siglip_to_vit,
    "hf_dinov2": hf_dinov2_to_vit,
    "hf_dinov3": hf_dinov3_to_vit,
}


# How each layout of this module is recognised, from marker keys (models/layouts.py orders them). Only the layout is
# named; the architecture (MLP type, registers, sizes) comes from the backbone table, never from the keys.
def is_hf_dinov2(keys: set[str]) -> bool:
    return "embeddings.patch_embeddings.projection.weight" in keys and "encoder.layer.0.layer_scale1.lambda1" in keys


def is_hf_dinov3(keys: set[str]) -> bool:
    return "embeddings.patch_embeddings.weight" in keys and bool(
        keys & {"layer.0.layer_scale1.lambda1", "model.layer.0.layer_scale1.lambda1"}
    )


def is_hf_siglip(keys: set[str]) -> bool:
    for prefix in ("", "vision_model."):
        markers = {f"{prefix}{name}.weight" for name in ("embeddings.patch_embedding", "post_layernorm")}
        # HF CLIP shares these names but also has a class embedding; SigLIP has none
        if markers <= keys and f"{prefix}embeddings.class_embedding" not in keys:
            return True
    return False

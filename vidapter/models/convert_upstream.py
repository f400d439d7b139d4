"""Pure state-dict converters for the newer backbone families' own releases and their timm / open_clip files.

Every converter maps one published layout to vidapter's canonical names (timm's VisionTransformer vocabulary, see
``convert.py``) with one declarative table and an explicit ignore list, run by ``convert()``: an unknown key raises
``ConversionError`` naming it. Where a layout needs more than a rename, a small named step runs around the table:

- ``_with_qkv_bias``: the canonical ``attn.qkv.bias`` always exists. A missing k bias (EVA02, DINOv3 ``_qkvb``) or a
  missing qkv bias (timm ``vit_*_dinov3`` without ``_qkvb``) becomes zeros, which is exact: a key bias adds the same
  number to every logit of a query's softmax, and a zero bias is no bias.
- ``_apply_bias_mask``: DINOv3 originals store ``attn.qkv.bias`` beside ``bias_mask`` ([1; 0; 1]); the model uses
  ``bias * bias_mask``, so that product is kept and the mask dropped.
- ``convert.fold_cls_position`` (after the table): DINOv2 with registers adds the position table (1 + HW rows)
  before inserting the registers; canonical (timm's ``no_embed_class``) folds row 0 into ``cls_token``.
- ``convert.split_pool_in_proj`` (after the table): PE's attention pool is an ``nn.MultiheadAttention`` whose
  ``in_proj`` rows [q; k; v] become timm's ``AttentionPoolLatent`` ``q`` and ``kv``.
- ``_tower``: full CLIP files keep the image tower; the text tower and logit scale are dropped by an explicit list.

Sources read (the released files themselves were not downloaded; their layouts follow from this code):

- timm 1.0.31 ``models/eva.py`` (``Eva``, ``EvaAttention``, ``checkpoint_filter_fn``, ``_convert_pe``),
  ``models/vision_transformer.py``, ``layers/mlp.py`` (``SwiGLUPacked``: ``silu(x1) * x2``),
  ``layers/attention_pool.py`` (``AttentionPoolLatent``).
- open_clip 3.3.0 ``timm_model.py`` (``TimmModel``), ``transformer.py`` (``TextTransformer``) and the
  ``EVA02-*``, ``*-SigLIP*``, ``PE-Core-*`` model configs (all ``timm_proj`` null or ``"none"``: the projection, when
  there is one, is the trunk's own ``head``).
- facebookresearch/perception_models 3e352cca ``core/vision_encoder/{pe,rope,config}.py``.
- facebookresearch/dinov2 b8931f7b ``dinov2/models/vision_transformer.py`` (``BlockChunk``),
  ``dinov2/layers/{swiglu_ffn,layer_scale,block}.py``, ``dinov2/hub/backbones.py``.
- facebookresearch/dinov3 6876159a ``dinov3/models/vision_transformer.py``,
  ``dinov3/layers/{attention,ffn_layers,rope_position_encoding}.py``, ``dinov3/hub/backbones.py``.
- baaivision/EVA 5623d08b ``EVA-CLIP/rei/eva_clip/{eva_vit_model,model,factory,rope}.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from vidapter.models.convert import (
    _B,
    OPENAI,
    OPENAI_IGNORE,
    TIMM,
    TIMM_IGNORE,
    ConversionError,
    Fuse,
    Row,
    convert,
    fold_cls_position,
    split_clip_visual,
    split_pool_in_proj,
)

Tensor = torch.Tensor
Converter = Callable[[Mapping[str, Tensor]], dict[str, Tensor]]

_BLK = r"blocks\.(\d+)\."

# timm VisionTransformer (CLIP, SigLIP, DINOv2 with or without registers and packed SwiGLU, PE-Core's timm files):
# convert.py's TIMM table, which every timm VisionTransformer key of these families is in.
TIMM_VIT: list[Row] = TIMM

# timm's Eva class on top: separate q/k/v projections (EVA02), q_bias/v_bias beside a fused qkv weight (DINOv3
# ``_qkvb``; the k bias is a non-persistent zero buffer), gamma_1/gamma_2, EVA02's sub-LNs and SwiGLU (fc1_g is the
# SiLU gate: silu(fc1_g(x)) * fc1_x(x)); DINOv3-S+/H+ use fc1_g/fc1_x/fc2 without the sub-LN.
TIMM_EVA: list[Row] = [
    *TIMM_VIT,
    *[(rf"{_BLK}attn\.{c}_proj\.{_B}", r"blocks.\1.attn.qkv.\2", Fuse(i, 3)) for i, c in enumerate("qkv")],
    *[(rf"{_BLK}attn\.{c}_bias", r"blocks.\1.attn.qkv.bias", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (rf"{_BLK}gamma_([12])", r"blocks.\1.ls\2.gamma", None),
    (rf"{_BLK}(attn\.norm|mlp\.fc1_g|mlp\.fc1_x|mlp\.norm)\.{_B}", r"blocks.\1.\2.\3", None),
]

# open_clip 3.3.0 (TextTransformer, with ``custom_text``) and EVA-CLIP's text tower, beside the image tower.
_TEXT = (
    r"(?:text\.)?(token_embedding\.weight|positional_embedding|cls_emb|text_projection(\.weight|\.bias)?"
    r"|ln_final\.(weight|bias)|transformer\.resblocks\.\d+\..+|attn_mask|logit_scale)"
)
OPEN_CLIP_TIMM_DROP = [
    _TEXT,
    r"logit_bias",  # SigLIP
    r"visual\.head\.proj\.(weight|bias)",  # TimmModel's own projection (timm_proj "linear"; not these families')
    r"visual\.head\.mlp\.fc[12]\.(weight|bias)",  # (timm_proj "mlp")
]

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

# DINOv3 originals (torch.hub ``dinov3_vit*16*``): storage tokens, RoPE only, k-masked qkv bias (applied before).
DINOV3: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"storage_tokens", "reg_token", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"{_BLK}(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (rf"{_BLK}mlp\.w1\.{_B}", r"blocks.\1.mlp.fc1_g.\2", None),  # SwiGLUFFN (S+, H+, 7B): silu(w1 x) * w2 x
    (rf"{_BLK}mlp\.w2\.{_B}", r"blocks.\1.mlp.fc1_x.\2", None),
    (rf"{_BLK}mlp\.w3\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"{_BLK}(ls[12])\.gamma", r"blocks.\1.\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
# ``local_cls_norm`` (ViT-L SAT-493M, 7B) is applied only to local crops in training. ``cls_norm`` (untied CLS norm)
# is used at inference and has no canonical name: it raises.
DINOV3_IGNORE = [r"mask_token", r"rope_embed\.periods", r"local_cls_norm\.(weight|bias)"]

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

# EVA-CLIP originals (``QuanSun/EVA-CLIP`` ``EVA02_CLIP_*.pt``, ``EVAVisionTransformer``): q_bias/v_bias beside
# q_proj/k_proj/v_proj (subln) or a fused qkv (EVA01), inner_attn_ln, SwiGLU w1 (the SiLU gate) / w2 / ffn_ln / w3.
EVA_CLIP: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"pos_embed", "pos_embed", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"{_BLK}(norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (rf"{_BLK}attn\.qkv\.weight", r"blocks.\1.attn.qkv.weight", None),
    *[(rf"{_BLK}attn\.{c}_proj\.weight", r"blocks.\1.attn.qkv.weight", Fuse(i, 3)) for i, c in enumerate("qkv")],
    *[(rf"{_BLK}attn\.{c}_bias", r"blocks.\1.attn.qkv.bias", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (rf"{_BLK}attn\.inner_attn_ln\.{_B}", r"blocks.\1.attn.norm.\2", None),
    (rf"{_BLK}mlp\.w1\.{_B}", r"blocks.\1.mlp.fc1_g.\2", None),
    (rf"{_BLK}mlp\.w2\.{_B}", r"blocks.\1.mlp.fc1_x.\2", None),
    (rf"{_BLK}mlp\.ffn_ln\.{_B}", r"blocks.\1.mlp.norm.\2", None),
    (rf"{_BLK}mlp\.w3\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"{_BLK}gamma_([12])", r"blocks.\1.ls\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
]
# ``head`` is the image-to-text projection (a Linear with bias); the RoPE tables are persistent buffers, saved once
# for the model and once more under every block (one shared module).
EVA_CLIP_IGNORE = [r"head\.(weight|bias)", r"rope\.freqs_(cos|sin)", r"blocks\.\d+\.attn\.rope\.freqs_(cos|sin)"]


def _with_qkv_bias(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Add the zero biases a layout leaves out by design: the k bias beside q and v biases (EVA02, DINOv3 ``_qkvb``),
    and the whole qkv bias in a file whose attention has no bias at all (timm ``vit_*_dinov3``). A bias missing from
    one block of a file that has them elsewhere is not filled: it stays missing and is reported."""
    has_bias = any(re.fullmatch(r".*attn\.(qkv\.bias|[qkv]_bias|[qkv]_proj\.bias)", k) for k in sd)
    out = dict(sd)
    for key, weight in sd.items():
        m = re.fullmatch(r"(.*attn\.)(q_proj|qkv)\.weight", key)
        if m is None:
            continue
        p, split = m.group(1), m.group(2) == "q_proj"
        if p + "q_bias" in sd:
            out.setdefault(p + "k_bias", torch.zeros_like(sd[p + "q_bias"]))
        elif split and p + "q_proj.bias" in sd:
            out.setdefault(p + "k_proj.bias", torch.zeros_like(sd[p + "q_proj.bias"]))
        elif split and not has_bias:
            for c in "qkv":
                out[p + f"{c}_proj.bias"] = weight.new_zeros(sd[p + f"{c}_proj.weight"].shape[0])
        elif not has_bias:
            out[p + "qkv.bias"] = weight.new_zeros(weight.shape[0])
    return out


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


def _tower(sd: Mapping[str, Tensor], prefix: str, drop: list[str], fmt: str) -> tuple[dict[str, Tensor], str]:
    """Keep the keys under ``prefix`` (stripped); every other key must match a ``drop`` pattern. A file with no key
    under ``prefix`` is the image tower already and is returned as is. Also returns the format's name for messages,
    which says that the keys it names had ``prefix``."""
    if not any(k.startswith(prefix) for k in sd):
        return dict(sd), fmt
    dropped = [re.compile(p) for p in drop]
    tower, unknown = {}, []
    for k, v in sd.items():
        if k.startswith(prefix):
            tower[k[len(prefix) :]] = v
        elif not any(p.fullmatch(k) for p in dropped):
            unknown.append(k)
    if unknown:
        raise ConversionError(f"{fmt} checkpoint has keys outside the image and text towers: {', '.join(unknown[:8])}")
    return tower, f"{fmt} (under {prefix!r})"


def timm_vit_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """timm ``VisionTransformer`` (CLIP, SigLIP, DINOv2 ± registers, DINOv2-g) -> canonical names."""
    return convert(_with_qkv_bias(state_dict), TIMM_VIT, TIMM_IGNORE, "timm_vit")


def timm_eva_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """timm ``Eva`` (``eva02_*_clip_*``, ``vit_pe_core_*``, ``vit_*_dinov3[_qkvb]``) -> canonical names."""
    return convert(_with_qkv_bias(state_dict), TIMM_EVA, TIMM_IGNORE, "timm_eva")


def open_clip_timm_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """open_clip timm-backed CLIP (``EVA02-*``, ``*-SigLIP*``, ``PE-Core-*``): ``visual.trunk.*`` -> canonical names;
    the trunk's ``head`` (the projection), the text tower and the logit scale/bias are dropped."""
    trunk, fmt = _tower(state_dict, "visual.trunk.", OPEN_CLIP_TIMM_DROP, "open_clip_timm")
    return convert(_with_qkv_bias(trunk), TIMM_EVA, TIMM_IGNORE, fmt)


def dinov2_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv2 original (torch.hub, or FSDP-chunked blocks) -> canonical names, the CLS position folded with
    registers."""
    return fold_cls_position(convert(state_dict, DINOV2, DINOV2_IGNORE, "dinov2"), "dinov2")


def dinov3_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DINOv3 original (torch.hub) -> canonical names (the k bias masked to zero)."""
    return convert(_with_qkv_bias(_apply_bias_mask(state_dict)), DINOV3, DINOV3_IGNORE, "dinov3")


def pe_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Perception Encoder original (``<name>.pt``, full CLIP or image tower, with or without ``visual.``) ->
    canonical names; the attention pool's in_proj is split into q and kv, ``proj`` is dropped."""
    fmt = "pe (under 'visual.')" if any(k.startswith("visual.") for k in state_dict) else "pe"
    return split_pool_in_proj(convert(split_clip_visual(state_dict, "pe"), PE, OPENAI_IGNORE, fmt), fmt)


def eva_clip_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """EVA-CLIP original (``EVA02_CLIP_*.pt``, full CLIP or image tower) -> canonical names (k bias zero)."""
    tower, fmt = _tower(state_dict, "visual.", [_TEXT], "eva_clip")
    return convert(_with_qkv_bias(tower), EVA_CLIP, EVA_CLIP_IGNORE, fmt)


UPSTREAM_FORMATS: dict[str, Converter] = {
    "timm_vit": timm_vit_to_vit,
    "timm_eva": timm_eva_to_vit,
    "open_clip_timm": open_clip_timm_to_vit,
    "dinov2": dinov2_to_vit,
    "dinov3": dinov3_to_vit,
    "pe": pe_to_vit,
    "eva_clip": eva_clip_to_vit,
}

# Keys only timm's Eva class writes (block 0); a timm file with none of them is in VisionTransformer's vocabulary.
_EVA_MARKERS = ("gamma_1", "attn.q_proj.weight", "attn.q_bias", "attn.norm.weight", "mlp.fc1_g.weight")
# Keys only an EVA-CLIP original writes (block 0, or the RoPE table).
_EVA_CLIP_MARKERS = ("blocks.0.attn.inner_attn_ln.weight", "blocks.0.mlp.w1.weight", "rope.freqs_cos")


# How each layout of this module is recognised, from marker keys (models/layouts.py orders them: these come before
# OpenAI's, which takes every ``conv1`` file, PE's included, and before timm's, which takes every ``patch_embed``
# file). A timm file in VisionTransformer's vocabulary (CLIP, SigLIP, DINOv2, PE-Core's Eva files) is "timm".
def is_open_clip_timm(keys: set[str]) -> bool:
    return "visual.trunk.patch_embed.proj.weight" in keys and "visual.trunk.blocks.0.norm1.weight" in keys


def is_pe(keys: set[str]) -> bool:
    return bool({"attn_pool.probe", "visual.attn_pool.probe"} & keys and {"conv1.weight", "visual.conv1.weight"} & keys)


def is_eva_clip(keys: set[str]) -> bool:
    if {"visual.patch_embed.proj.weight", "visual.blocks.0.attn.q_bias"} <= keys:
        return True
    return "blocks.0.attn.q_bias" in keys and any(m in keys for m in _EVA_CLIP_MARKERS)


def is_dinov3(keys: set[str]) -> bool:
    return "storage_tokens" in keys and "blocks.0.attn.qkv.weight" in keys


def is_dinov2(keys: set[str]) -> bool:
    return "mask_token" in keys and bool({"blocks.0.ls1.gamma", "blocks.0.0.ls1.gamma"} & keys) and "pos_embed" in keys


def is_timm_eva(keys: set[str]) -> bool:
    return "patch_embed.proj.weight" in keys and any("blocks.0." + m in keys for m in _EVA_MARKERS)

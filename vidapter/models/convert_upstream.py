"""Pure state-dict converters for timm's and open_clip's files of the newer image families, and the steps the
families' own originals share (their tables are in the family modules, ``models/families/``).

Every converter maps one published layout to vidapter's canonical names (timm's VisionTransformer vocabulary, see
``convert.py``) with one declarative table and an explicit ignore list, run by ``convert()``: an unknown key raises
``ConversionError`` naming it. Where a layout needs more than a rename, a small named step runs around the table:

- ``with_qkv_bias``: the canonical ``attn.qkv.bias`` always exists. A missing k bias (EVA02, DINOv3 ``_qkvb``) or a
  missing qkv bias (timm ``vit_*_dinov3`` without ``_qkvb``) becomes zeros, which is exact: a key bias adds the same
  number to every logit of a query's softmax, and a zero bias is no bias.
- ``image_tower``: full CLIP files keep the image tower; the text tower and logit scale are dropped by an explicit
  list.

Sources read: timm 1.0.31 ``models/eva.py`` (``Eva``, ``EvaAttention``, ``checkpoint_filter_fn``, ``_convert_pe``),
``models/vision_transformer.py``, ``layers/mlp.py`` (``SwiGLUPacked``: ``silu(x1) * x2``),
``layers/attention_pool.py`` (``AttentionPoolLatent``); open_clip 3.3.0 ``timm_model.py`` (``TimmModel``),
``transformer.py`` (``TextTransformer``) and the ``EVA02-*``, ``*-SigLIP*``, ``PE-Core-*`` model configs (all
``timm_proj`` null or ``"none"``: the projection, when there is one, is the trunk's own ``head``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from vidapter.models.convert import (
    _B,
    TIMM,
    TIMM_IGNORE,
    ConversionError,
    Fuse,
    Row,
    convert,
)

Tensor = torch.Tensor
Converter = Callable[[Mapping[str, Tensor]], dict[str, Tensor]]

BLK = r"blocks\.(\d+)\."

# timm VisionTransformer (CLIP, SigLIP, DINOv2 with or without registers and packed SwiGLU, PE-Core's timm files):
# convert.py's TIMM table, which every timm VisionTransformer key of these families is in.
TIMM_VIT: list[Row] = TIMM

# timm's Eva class on top: separate q/k/v projections (EVA02), q_bias/v_bias beside a fused qkv weight (DINOv3
# ``_qkvb``; the k bias is a non-persistent zero buffer), gamma_1/gamma_2, EVA02's sub-LNs and SwiGLU (fc1_g is the
# SiLU gate: silu(fc1_g(x)) * fc1_x(x)); DINOv3-S+/H+ use fc1_g/fc1_x/fc2 without the sub-LN.
TIMM_EVA: list[Row] = [
    *TIMM_VIT,
    *[(rf"{BLK}attn\.{c}_proj\.{_B}", r"blocks.\1.attn.qkv.\2", Fuse(i, 3)) for i, c in enumerate("qkv")],
    *[(rf"{BLK}attn\.{c}_bias", r"blocks.\1.attn.qkv.bias", Fuse(i, 3)) for i, c in enumerate("qkv")],
    (rf"{BLK}gamma_([12])", r"blocks.\1.ls\2.gamma", None),
    (rf"{BLK}(attn\.norm|mlp\.fc1_g|mlp\.fc1_x|mlp\.norm)\.{_B}", r"blocks.\1.\2.\3", None),
]

# open_clip 3.3.0 (TextTransformer, with ``custom_text``) and EVA-CLIP's text tower, beside the image tower.
TEXT_KEYS = (
    r"(?:text\.)?(token_embedding\.weight|positional_embedding|cls_emb|text_projection(\.weight|\.bias)?"
    r"|ln_final\.(weight|bias)|transformer\.resblocks\.\d+\..+|attn_mask|logit_scale)"
)
OPEN_CLIP_TIMM_DROP = [
    TEXT_KEYS,
    r"logit_bias",  # SigLIP
    r"visual\.head\.proj\.(weight|bias)",  # TimmModel's own projection (timm_proj "linear"; not these families')
    r"visual\.head\.mlp\.fc[12]\.(weight|bias)",  # (timm_proj "mlp")
]


def with_qkv_bias(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
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


def image_tower(sd: Mapping[str, Tensor], prefix: str, drop: list[str], fmt: str) -> tuple[dict[str, Tensor], str]:
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
    return convert(with_qkv_bias(state_dict), TIMM_VIT, TIMM_IGNORE, "timm_vit")


def timm_eva_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """timm ``Eva`` (``eva02_*_clip_*``, ``vit_pe_core_*``, ``vit_*_dinov3[_qkvb]``) -> canonical names."""
    return convert(with_qkv_bias(state_dict), TIMM_EVA, TIMM_IGNORE, "timm_eva")


def open_clip_timm_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """open_clip timm-backed CLIP (``EVA02-*``, ``*-SigLIP*``, ``PE-Core-*``): ``visual.trunk.*`` -> canonical names;
    the trunk's ``head`` (the projection), the text tower and the logit scale/bias are dropped."""
    trunk, fmt = image_tower(state_dict, "visual.trunk.", OPEN_CLIP_TIMM_DROP, "open_clip_timm")
    return convert(with_qkv_bias(trunk), TIMM_EVA, TIMM_IGNORE, fmt)


UPSTREAM_FORMATS: dict[str, Converter] = {
    "timm_vit": timm_vit_to_vit,
    "timm_eva": timm_eva_to_vit,
    "open_clip_timm": open_clip_timm_to_vit,
}

# Keys only timm's Eva class writes (block 0); a timm file with none of them is in VisionTransformer's vocabulary.
_EVA_MARKERS = ("gamma_1", "attn.q_proj.weight", "attn.q_bias", "attn.norm.weight", "mlp.fc1_g.weight")


# How each layout of this module is recognised, from marker keys (models/layouts.py orders them: before timm's, which
# takes every ``patch_embed`` file). A timm file in VisionTransformer's vocabulary (CLIP, SigLIP, DINOv2, PE-Core's
# Eva files) is "timm".
def is_open_clip_timm(keys: set[str]) -> bool:
    return "visual.trunk.patch_embed.proj.weight" in keys and "visual.trunk.blocks.0.norm1.weight" in keys


def is_timm_eva(keys: set[str]) -> bool:
    return "patch_embed.proj.weight" in keys and any("blocks.0." + m in keys for m in _EVA_MARKERS)

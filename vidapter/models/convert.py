"""Pure state-dict converters: foreign checkpoint layouts -> vidapter's names (timm's).

Each format is one declarative table of ``(source regex, target template, transform)`` rows and an explicit ignore
list. A key that matches neither raises ``ConversionError`` naming it. Rows whose transform is a ``Fuse`` marker are
parts of one fused tensor (separate q/k/v projections -> ``attn.qkv``) and are concatenated in order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from vidapter.errors import VidapterError

Tensor = torch.Tensor


class ConversionError(VidapterError, ValueError):
    """A checkpoint that does not fit the declared layout (unknown, missing or misshapen keys)."""


@dataclass(frozen=True)
class Fuse:
    """Marks a source tensor as part ``index`` of ``count`` concatenated along dim 0, after ``fn``."""

    index: int
    count: int
    fn: Callable[[Tensor], Tensor] | None = None


Row = tuple[str, str, "Callable[[Tensor], Tensor] | Fuse | None"]


def _as_cls(t: Tensor) -> Tensor:
    return t.reshape(1, 1, -1)


def _as_pos(t: Tensor) -> Tensor:
    return t.reshape(1, *t.shape[-2:])


_B = r"(weight|bias)"

# OpenAI CLIP image tower (the released TorchScript files and plain state dicts) and open_clip, without "visual.".
OPENAI: list[Row] = [
    (r"conv1\.weight", "patch_embed.proj.weight", None),
    (r"class_embedding", "cls_token", _as_cls),
    (r"positional_embedding", "pos_embed", _as_pos),
    (rf"ln_pre\.{_B}", r"norm_pre.\1", None),
    (r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2", None),
    (rf"transformer\.resblocks\.(\d+)\.attn\.out_proj\.{_B}", r"blocks.\1.attn.proj.\2", None),
    (rf"transformer\.resblocks\.(\d+)\.ln_1\.{_B}", r"blocks.\1.norm1.\2", None),
    (rf"transformer\.resblocks\.(\d+)\.ln_2\.{_B}", r"blocks.\1.norm2.\2", None),
    (rf"transformer\.resblocks\.(\d+)\.mlp\.c_fc\.{_B}", r"blocks.\1.mlp.fc1.\2", None),
    (rf"transformer\.resblocks\.(\d+)\.mlp\.c_proj\.{_B}", r"blocks.\1.mlp.fc2.\2", None),
    (rf"ln_post\.{_B}", r"norm.\1", None),
]
OPENAI_IGNORE = [r"proj"]  # CLIP's image-to-text projection is dropped, as in AIM
# Keys of the text tower and TorchScript attributes that sit beside "visual.*" in a full CLIP file.
CLIP_TEXT_TOWER = [
    r"positional_embedding",
    r"text_projection",
    r"logit_scale",
    r"token_embedding\.weight",
    r"ln_final\.(weight|bias)",
    r"transformer\.resblocks\.\d+\..+",
    r"input_resolution",
    r"context_length",
    r"vocab_size",
    r"attn_mask",
]


def hf_encoder_rows(prefix: str, out: str = "") -> list[Row]:
    """The rows of a transformers encoder's layers (CLIP's and SigLIP's towers, image and text): ``prefix`` matches
    what comes before ``encoder.layers.N.``, ``out`` what comes before vidapter's ``blocks.N.``; q, k, v fuse."""
    layer, block = prefix + r"encoder\.layers\.(\d+)\.", out + r"blocks.\1."
    return [
        *[(layer + rf"self_attn\.{c}_proj\.{_B}", block + r"attn.qkv.\2", Fuse(i, 3)) for i, c in enumerate("qkv")],
        (layer + rf"self_attn\.out_proj\.{_B}", block + r"attn.proj.\2", None),
        (layer + rf"layer_norm([12])\.{_B}", block + r"norm\2.\3", None),
        (layer + rf"mlp\.fc([12])\.{_B}", block + r"mlp.fc\2.\3", None),
    ]


def hf_text_rows() -> list[Row]:
    """A transformers text tower (``text_model.``: CLIP's and SigLIP's): embeddings, layers, final norm, as
    ``ClipText``'s ``text.*``."""
    return [
        (r"text_model\.embeddings\.token_embedding\.weight", "text.token_embedding.weight", None),
        (r"text_model\.embeddings\.position_embedding\.weight", "text.pos_embed", None),
        *hf_encoder_rows(r"text_model\.", "text."),
        (rf"text_model\.final_layer_norm\.{_B}", r"text.norm.\1", None),
    ]


# CLIPModel and transformers-4 CLIPVisionModel files prefix "vision_model."; transformers-5 vision-only files do not.
_HF = r"(?:vision_model\.)?"
HF_CLIP: list[Row] = [
    (_HF + r"embeddings\.patch_embedding\.weight", "patch_embed.proj.weight", None),
    (_HF + r"embeddings\.class_embedding", "cls_token", _as_cls),
    (_HF + r"embeddings\.position_embedding\.weight", "pos_embed", _as_pos),
    (_HF + rf"pre_layrnorm\.{_B}", r"norm_pre.\1", None),
    *hf_encoder_rows(_HF),
    (_HF + rf"post_layernorm\.{_B}", r"norm.\1", None),
]
HF_CLIP_IGNORE = [
    _HF + r"embeddings\.position_ids",
    r"text_model\..+",
    r"visual_projection\.weight",
    r"text_projection\.weight",
    r"logit_scale",
]

# timm VisionTransformer: CLIP, IN-21K, SigLIP, DINOv2 with or without registers (DINOv2-g's packed SwiGLU fc1 rows
# are [x1; x2], as vidapter's), the attention-pooling head; also the part of timm's Eva class that PE-Core uses.
# ``fc_norm`` (average pooling with a norm of its own) is not listed: such a file raises.
TIMM: list[Row] = [
    (r"cls_token", "cls_token", None),
    (r"reg_token", "reg_token", None),
    (r"pos_embed", "pos_embed", None),
    (rf"patch_embed\.proj\.{_B}", r"patch_embed.proj.\1", None),
    (rf"norm_pre\.{_B}", r"norm_pre.\1", None),
    (rf"blocks\.(\d+)\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)\.{_B}", r"blocks.\1.\2.\3", None),
    (r"blocks\.(\d+)\.(ls[12])\.gamma", r"blocks.\1.\2.gamma", None),
    (rf"norm\.{_B}", r"norm.\1", None),
    (r"attn_pool\.latent", "attn_pool.latent", None),
    (rf"attn_pool\.(q|kv|proj|norm|mlp\.fc1|mlp\.fc2)\.{_B}", r"attn_pool.\1.\2", None),
]
# The classifier and the old IN-21K "representation" layer (pre_logits) are not part of the backbone.
TIMM_IGNORE = [r"head\.(weight|bias)", r"pre_logits\.fc\.(weight|bias)",
               *CLIP_TEXT_TOWER, r"visual\.proj"]  # a text tower beside timm's names: vidapter's demo CLIP  # fmt: skip


def _hwio_to_oihw(t: Tensor) -> Tensor:
    return t.permute(3, 2, 0, 1)


def _dense(t: Tensor) -> Tensor:
    return t.t()


def _qkv_kernel(t: Tensor) -> Tensor:  # (D, H, Dh) -> (H*Dh, D)
    return t.flatten(1).t()


def _qkv_bias(t: Tensor) -> Tensor:  # (H, Dh) -> (H*Dh,)
    return t.reshape(-1)


def _out_kernel(t: Tensor) -> Tensor:  # (H, Dh, D) -> (D, H*Dh)
    return t.reshape(-1, t.shape[-1]).t()


# The original Google ViT .npz (github.com/google-research/vision_transformer), e.g. imagenet21k/ViT-B_16.npz.
_J = r"Transformer/encoderblock_(\d+)/"
_JA = _J + r"MultiHeadDotProductAttention_1/"
JAX_NPZ: list[Row] = [
    (r"embedding/kernel", "patch_embed.proj.weight", _hwio_to_oihw),
    (r"embedding/bias", "patch_embed.proj.bias", None),
    (r"cls", "cls_token", None),
    (r"Transformer/posembed_input/pos_embedding", "pos_embed", None),
    (_J + r"LayerNorm_0/scale", r"blocks.\1.norm1.weight", None),
    (_J + r"LayerNorm_0/bias", r"blocks.\1.norm1.bias", None),
    *[
        (_JA + c + r"/kernel", r"blocks.\1.attn.qkv.weight", Fuse(i, 3, _qkv_kernel))
        for i, c in enumerate(("query", "key", "value"))
    ],
    *[
        (_JA + c + r"/bias", r"blocks.\1.attn.qkv.bias", Fuse(i, 3, _qkv_bias))
        for i, c in enumerate(("query", "key", "value"))
    ],
    (_JA + r"out/kernel", r"blocks.\1.attn.proj.weight", _out_kernel),
    (_JA + r"out/bias", r"blocks.\1.attn.proj.bias", None),
    (_J + r"LayerNorm_2/scale", r"blocks.\1.norm2.weight", None),
    (_J + r"LayerNorm_2/bias", r"blocks.\1.norm2.bias", None),
    *[(_J + f"MlpBlock_3/Dense_{i}/kernel", rf"blocks.\1.mlp.fc{i + 1}.weight", _dense) for i in range(2)],
    *[(_J + f"MlpBlock_3/Dense_{i}/bias", rf"blocks.\1.mlp.fc{i + 1}.bias", None) for i in range(2)],
    (r"Transformer/encoder_norm/scale", "norm.weight", None),
    (r"Transformer/encoder_norm/bias", "norm.bias", None),
]
JAX_NPZ_IGNORE = [r"head/(kernel|bias)", r"pre_logits/(kernel|bias)"]


def _mmaction_video(adapters: dict[str, str]) -> list[Row]:
    """An MMAction2 recognizer on CLIP (AIM's and ZeroI2V's releases): backbone.<OpenAI names>, each adapter's
    ``D_fc1``/``D_fc2`` (official name -> vidapter's), the temporal embedding and ``cls_head.fc_cls``."""
    return [
        *[(r"backbone\." + src, "backbone." + dst, fn) for src, dst, fn in OPENAI],
        *[(rf"backbone\.transformer\.resblocks\.(\d+)\.{src}\.D_fc([12])\.{_B}", rf"backbone.blocks.\1.{dst}.fc\2.\3",
           None) for src, dst in adapters.items()],
        (r"backbone\.temporal_embedding", "temporal_embed", None),
        (rf"cls_head\.fc_cls\.{_B}", r"head.fc.\1", None),
    ]  # fmt: skip


# Released AIM checkpoints (MMAction2): backbone.<OpenAI names>, adapters, temporal embedding, cls_head.
AIM_OFFICIAL = _mmaction_video(
    {"S_Adapter": "s_adapter", "T_Adapter": "t_adapter", "T_Adapter_in": "t_adapter_in", "MLP_Adapter": "mlp_adapter"}
)
AIM_OFFICIAL_IGNORE = [r"backbone\.proj"]


# Released ST-Adapter checkpoints (linziyi96/st-adapter): the trained tensors only; the image weights are CLIP's.
ST_ADAPTER_OFFICIAL: list[Row] = [
    (rf"transformer\.resblocks\.(\d+)\.adapter_pre_(attn|mlp)\.(fc1|conv|fc2)\.{_B}",
     r"backbone.blocks.\1.adapter_pre_\2.\3.\4", None),
    (rf"fc\.{_B}", r"head.fc.\1", None),
]  # fmt: skip

# Released EVL checkpoints (OpenGVLab/efficient-video-recognition), ``module.`` stripped: the decoder and the head.
EVL_OFFICIAL: list[Row] = [
    (r"decoder\.(cls_token|temporal_pos_embed\.\d+|cross_attention\.\d+\.w[12])", r"decoder.\1", None),
    (rf"decoder\.temporal_conv\.(\d+)\.{_B}", r"decoder.temporal_conv.\1.\2", None),
    (rf"decoder\.decoder_layers\.(\d+)\.(attn\.[qkv]_proj|attn\.out_proj|mlp\.fc[12]|norm[123])\.{_B}",
     r"decoder.decoder_layers.\1.\2.\3", None),
    (rf"proj\.0\.{_B}", r"decoder.norm.\1", None),
    (rf"proj\.2\.{_B}", r"head.fc.\1", None),
]  # fmt: skip

# Released ZeroI2V checkpoints (MMAction2 1.x): AIM's layout with linear adapters; a merged (reparameterised) one
# has no adapter keys.
ZEROI2V_OFFICIAL = _mmaction_video(
    {"T_Adapter_in": "t_adapter_in", "S_Adapter": "s_adapter", "MLP_Adapter": "mlp_adapter",
     "MLP_Adapter_out": "mlp_adapter_out"}
)  # fmt: skip


def convert(state_dict: Mapping[str, Tensor], table: list[Row], ignore: list[str], fmt: str) -> dict[str, Tensor]:
    """Apply one format's table. Unknown keys raise, listing them; fused parts must all be present."""
    out: dict[str, Tensor] = {}
    parts: dict[str, dict[int, Tensor]] = {}
    counts: dict[str, int] = {}
    unknown = []
    compiled = [(re.compile(p), t, fn) for p, t, fn in table]
    ignored = [re.compile(p) for p in ignore]
    for key, value in state_dict.items():
        if any(p.fullmatch(key) for p in ignored):
            continue
        hit = next(((m, t, fn) for p, t, fn in compiled if (m := p.fullmatch(key))), None)
        if hit is None:
            unknown.append(key)
            continue
        m, template, fn = hit
        name = m.expand(template)
        if isinstance(fn, Fuse):
            if fn.index in parts.get(name, {}):
                raise ConversionError(f"{fmt}: two source keys map to part {fn.index} of {name!r} (second: {key!r})")
            parts.setdefault(name, {})[fn.index] = fn.fn(value) if fn.fn else value
            counts[name] = fn.count
        else:
            if name in out:
                raise ConversionError(f"{fmt}: two source keys map to {name!r} (second: {key!r})")
            out[name] = fn(value) if fn else value
    if unknown:
        shown = ", ".join(unknown[:8]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise ConversionError(f"{fmt} checkpoint has keys this layout does not know: {shown}")
    for name, got in parts.items():
        if sorted(got) != list(range(counts[name])):
            raise ConversionError(f"{fmt}: {name!r} needs {counts[name]} parts, found parts {sorted(got)}")
        out[name] = torch.cat([got[i] for i in range(counts[name])], dim=0)
    return out


def fold_cls_position(sd: dict[str, Tensor], fmt: str) -> dict[str, Tensor]:
    """DINOv2 with registers adds its position table (1, 1+HW, D) to [CLS, patches] and inserts the registers after
    that, unpositioned. Canonically (timm's ``no_embed_class``) the table covers the patches only, so the CLS position
    is folded into the class token: cls_token := cls_token + pos_embed[:, :1], pos_embed := pos_embed[:, 1:]; the sum
    is the one the original computes, so the fold is exact. Converted names in, converted names out; without
    registers the table keeps its CLS slot."""
    if "reg_token" not in sd:
        return sd
    if not {"cls_token", "pos_embed"} <= sd.keys():
        raise ConversionError(f"{fmt}: register tokens without cls_token and pos_embed")
    pos = sd["pos_embed"]
    if math.isqrt(pos.shape[1] - 1) ** 2 != pos.shape[1] - 1:
        raise ConversionError(f"{fmt}: pos_embed {tuple(pos.shape)} is not 1 + a square grid of patch positions")
    sd["cls_token"], sd["pos_embed"] = sd["cls_token"] + pos[:, :1], pos[:, 1:]
    return sd


def split_pool_in_proj(sd: dict[str, Tensor], fmt: str) -> dict[str, Tensor]:
    """An attention pool stored as one ``nn.MultiheadAttention`` (SigLIP's MAP head in HF files, PE's ``attn_pool``)
    has ``attn_pool.in_proj`` rows [q; k; v] after conversion: the probe's query is ``q``, the tokens' keys and values
    ``kv`` (rows [k; v]), as in timm's AttentionPoolLatent."""
    for kind in ("weight", "bias"):
        t = sd.pop(f"attn_pool.in_proj.{kind}", None)
        if t is not None:
            if t.shape[0] % 3:
                raise ConversionError(f"{fmt}: attention pool in_proj has {t.shape[0]} rows, not [q; k; v]")
            d = t.shape[0] // 3
            sd[f"attn_pool.q.{kind}"], sd[f"attn_pool.kv.{kind}"] = t[:d], t[d:]
    return sd


def split_clip_visual(state_dict: Mapping[str, Tensor], fmt: str) -> dict[str, Tensor]:
    """From a full CLIP state dict keep the image tower without its ``visual.`` prefix; text-tower keys are dropped
    only if they are known text-tower keys. A state dict with no ``visual.`` key is returned as is."""
    if not any(k.startswith("visual.") for k in state_dict):
        return dict(state_dict)
    text = [re.compile(p) for p in CLIP_TEXT_TOWER]
    visual, unknown = {}, []
    for k, v in state_dict.items():
        if k.startswith("visual."):
            visual[k[len("visual.") :]] = v
        elif not any(p.fullmatch(k) for p in text):
            unknown.append(k)
    if unknown:
        raise ConversionError(f"{fmt} checkpoint has keys outside the image and text towers: {', '.join(unknown[:8])}")
    return visual


def openai_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """OpenAI CLIP or open_clip (image tower, with or without ``visual.``) -> vidapter ViT names."""
    return convert(split_clip_visual(state_dict, "openai"), OPENAI, OPENAI_IGNORE, "openai")


def hf_clip_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Hugging Face ``CLIPVisionModel`` or ``CLIPModel`` -> vidapter ViT names (q/k/v fused into qkv)."""
    return convert(state_dict, HF_CLIP, HF_CLIP_IGNORE, "hf_clip")


def timm_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """timm ``VisionTransformer`` -> vidapter ViT names (the same names; the classifier is dropped)."""
    return convert(state_dict, TIMM, TIMM_IGNORE, "timm")


def jax_npz_to_vit(arrays: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Original Google ViT ``.npz`` (arrays already as tensors) -> vidapter ViT names."""
    prefix = "opt/target/" if any(k.startswith("opt/target/") for k in arrays) else ""
    arrays = {k[len(prefix) :]: v for k, v in arrays.items()} if prefix else arrays
    return convert(arrays, JAX_NPZ, JAX_NPZ_IGNORE, "jax_npz")


def aim_official_to_vidapter(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Released AIM (MMAction2) checkpoint -> a full ``VideoClassifier`` state dict."""
    return convert(state_dict, AIM_OFFICIAL, AIM_OFFICIAL_IGNORE, "aim_official")


def st_adapter_official_to_vidapter(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Released ST-Adapter checkpoint (its ``model`` dict) -> the trained tensors of a ``VideoClassifier``."""
    return convert(state_dict, ST_ADAPTER_OFFICIAL, [], "st_adapter_official")


def evl_official_to_vidapter(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Released EVL checkpoint (its ``model`` dict, ``module.`` stripped) -> the trained tensors of a
    ``VideoClassifier``."""
    return convert(state_dict, EVL_OFFICIAL, [], "evl_official")


def zeroi2v_official_to_vidapter(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Released ZeroI2V checkpoint (MMAction2, adapters or merged) -> a full ``VideoClassifier`` state dict."""
    return convert(state_dict, ZEROI2V_OFFICIAL, AIM_OFFICIAL_IGNORE, "zeroi2v_official")


def unwrap(obj: object) -> dict[str, Tensor]:
    """Take the tensors out of the usual wrappers: ``{'state_dict': ...}``, ``{'model': ...}``, DDP ``module.``."""
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ConversionError(f"expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


# How each layout of this module is recognised, from marker keys (models/layouts.py orders them).
def is_aim_official(keys: set[str]) -> bool:
    return "backbone.temporal_embedding" in keys or any(k.startswith("cls_head.") for k in keys)


def is_hf_clip(keys: set[str]) -> bool:
    return any(k.startswith(("vision_model.embeddings.", "embeddings.patch_embedding.")) for k in keys)


def is_openai(keys: set[str]) -> bool:
    return bool({"conv1.weight", "visual.conv1.weight"} & keys)


def is_timm(keys: set[str]) -> bool:
    return "patch_embed.proj.weight" in keys


def is_jax_npz(keys: set[str]) -> bool:
    return bool({"embedding/kernel", "opt/target/embedding/kernel"} & keys)

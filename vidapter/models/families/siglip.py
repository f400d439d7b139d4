"""SigLIP and SigLIP 2 (Zhai et al., 2023; Tschannen et al., 2025): no class token, positions for the patches only,
the MAP pooling head; tanh GELU as trained (timm and open_clip run exact GELU on the same weights: at most 4.7e-4
apart per element). Hugging Face's files (SigLIP, SigLIP 2 and NaFlex), timm's, open_clip's timm towers.

The Hugging Face layouts were checked against transformers 5.24.0 (``SiglipVisionModel``, ``SiglipModel``,
``Siglip2VisionModel``): converted and loaded into timm's model, the same pooled feature to 1e-5 in fp32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from vidapter.models.convert import (
    _B,
    ConversionError,
    Row,
    _as_pos,
    convert,
    hf_encoder_rows,
    hf_text_rows,
    split_pool_in_proj,
)
from vidapter.models.family import HALF, Family, TextFacts, ViTFacts, Weights, hub, register_family


def siglip_facts(width: int, depth: int, heads: int, patch: int, size: int, hidden: int | None = None) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu_tanh", 1e-6, False, False, True, HALF, HALF,
                    layout="timm", family="siglip", mlp_hidden=hidden, class_token=False, pos_embed="patches",
                    pos_resize="bicubic", attn_pool=heads, feature="pool", licence="Apache-2.0")  # fmt: skip


def siglip_text(width: int, layers: int, heads: int, vocab: int = 32000, hidden: int | None = None,
                tokenizer: str = "sentencepiece") -> TextFacts:  # fmt: skip
    """SigLIP's text tower (transformers ``SiglipTextModel``; SigLIP 2's is the same with Gemma's 256k vocabulary):
    bidirectional attention, the feature at the last of 64 positions through a Linear head with bias, tanh GELU, eps
    1e-6; the logits exp(scale) x cosine + bias, read through a sigmoid; SentencePiece ids (SigLIP 2: Gemma's)."""
    return TextFacts(width, layers, heads, width, 64, vocab, "gelu_tanh", 1e-6, hidden, causal=False, pool="last",
                     proj_bias=True, logit_bias=True, tokenizer=tokenizer, image_feature="pool")  # fmt: skip


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

_SIGLIP_TEXT = {
    "siglip_vitb16": siglip_text(768, 12, 12),
    "siglip_so400m14_384": siglip_text(1152, 27, 16, hidden=4304),
    "siglip2_vitb16": siglip_text(768, 12, 12, vocab=256_000, tokenizer="gemma"),
    "siglip2_so400m14_378": siglip_text(1152, 27, 16, vocab=256_000, hidden=4304, tokenizer="gemma"),
    "tiny_siglip": siglip_text(64, 1, 2, vocab=40),  # the tiny row's: a 40-piece test vocabulary
}

# the files beside the weights that a published name fetches: the tokenizer
_TOKENIZER_FILES = {"sentencepiece": ("spiece.model",), "gemma": ("tokenizer.json", "tokenizer_config.json")}

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
        **{f"hf:{repo}": Weights(row, hub(repo), companions=_TOKENIZER_FILES[_SIGLIP_TEXT[row].tokenizer])
           for repo, row in _HF},
    },
    layouts=("hf_siglip", "timm", "open_clip_timm"),
    timm_architectures=r".+_siglip_.+",
    text=_SIGLIP_TEXT,
))  # fmt: skip


# Its own releases' layouts: tables and converters (models/layouts.py recognises them, in its order).
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
HF_SIGLIP: list[Row] = [
    (_SV + r"embeddings\.patch_embedding\.weight", "patch_embed.proj.weight", _patch_kernel),
    (_SV + r"embeddings\.patch_embedding\.bias", "patch_embed.proj.bias", None),
    (_SV + r"embeddings\.position_embedding\.weight", "pos_embed", _as_pos),
    *hf_encoder_rows(_SV),
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


def hf_siglip_to_vit(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """HF ``SiglipVisionModel`` / ``Siglip2VisionModel`` (NaFlex) or a full ``SiglipModel`` file -> canonical names,
    q/k/v fused into ``attn.qkv``, the MAP head as ``attn_pool.*``. The text tower is dropped."""
    return split_pool_in_proj(convert(state_dict, HF_SIGLIP, HF_SIGLIP_IGNORE, "hf_siglip"), "hf_siglip")


# The text tower of a SiglipModel file (the image side's embedding is the pooled feature itself: no projection)
HF_SIGLIP_TEXT: list[Row] = [
    *hf_text_rows(),
    (r"text_model\.head\.weight", "text.proj", torch.t),
    (r"text_model\.head\.bias", "text.proj_bias", None),
    (r"logit_(scale|bias)", r"logit_\1", lambda t: t.reshape(())),
]
HF_SIGLIP_TEXT_IGNORE = [r"vision_model\..+", r"text_model\.embeddings\.position_ids"]


def hf_siglip_text(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A SiglipModel file's text tower, logit scale and bias -> ``ClipText`` names; the image projection is the
    identity (SigLIP compares the pooled image feature itself)."""
    sd = convert(state_dict, HF_SIGLIP_TEXT, HF_SIGLIP_TEXT_IGNORE, "hf_siglip")
    if "text.proj" in sd:
        sd["image_proj"] = torch.eye(sd["text.proj"].shape[1])
    return sd


def is_hf_siglip(keys: set[str]) -> bool:
    for prefix in ("", "vision_model."):
        markers = {f"{prefix}{name}.weight" for name in ("embeddings.patch_embedding", "post_layernorm")}
        # HF CLIP shares these names but also has a class embedding; SigLIP has none
        if markers <= keys and f"{prefix}embeddings.class_embedding" not in keys:
            return True
    return False

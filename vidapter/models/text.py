"""CLIP's text tower and the two tensors that put images and text in one space: the image projection and the logit
scale (openai/CLIP ``clip/model.py`` ``encode_text``, open_clip ``CLIP.encode_text``).

``TextTower(ids)`` embeds the token ids, adds the positions, runs the causal pre-norm blocks, takes the final-normed
feature at the end-of-text token (the first position of the largest id, as both do: the end id 49407 is the largest)
and projects it (``x @ text_projection``). The blocks are vidapter's image blocks with a causal attention. Nothing is
normalised inside: callers L2-normalise. ``ClipText`` holds the tower, ``image_proj`` (the image tower's ``proj``) and
``logit_scale`` (its exponential multiplies the cosine), read from an OpenAI or open_clip file by ``load_clip_text``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidapter.models.backbones import CLIP_MEAN, CLIP_STD, ViTFacts
from vidapter.models.convert import _B, OPENAI, ConversionError, Row, convert
from vidapter.models.pretrained import read_checkpoint
from vidapter.models.tokenizer import tokenizer
from vidapter.models.vit import Attention, Block, LayerNorm, rebase


@dataclass(frozen=True)
class TextFacts:
    """The text transformer's sizes and activation (OpenAI's CLIP: QuickGELU; open_clip's LAION/DataComp: GELU)."""

    width: int
    layers: int
    heads: int
    embed_dim: int
    context: int = 77
    vocab: int = 49408
    act: str = "quick_gelu"
    ln_eps: float = 1e-5

    def block_facts(self) -> ViTFacts:
        """The facts a vidapter block reads (width, heads, activation, LayerNorm in fp32 as CLIP computes it)."""
        return ViTFacts(self.width, self.layers, self.heads, 1, 1, self.act, self.ln_eps, True, False, False,
                        CLIP_MEAN, CLIP_STD)  # fmt: skip


class CausalAttention(Attention):
    """Each token attends to itself and the tokens before it (CLIP's text mask: -inf above the diagonal)."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, math: bool = False,
               num_frames: int | None = None) -> torch.Tensor:  # fmt: skip
        return self.output(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class TextTower(nn.Module):
    """(N, L) token ids, L <= context -> (N, embed_dim) text embeddings (not normalised)."""

    def __init__(self, facts: TextFacts):
        super().__init__()
        self.facts = facts
        self.token_embedding = nn.Embedding(facts.vocab, facts.width)
        self.pos_embed = nn.Parameter(torch.zeros(facts.context, facts.width))
        self.blocks = nn.ModuleList()
        for _ in range(facts.layers):
            blk = Block(facts.block_facts())
            blk.attn = rebase(blk.attn, CausalAttention)
            self.blocks.append(blk)
        self.norm = LayerNorm(facts.width, facts.ln_eps, True)
        self.proj = nn.Parameter(torch.zeros(facts.width, facts.embed_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] > self.facts.context:
            raise ValueError(f"expected token ids (N, L) with L <= {self.facts.context}, got {tuple(ids.shape)}")
        x = self.token_embedding(ids) + self.pos_embed[: ids.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[torch.arange(x.shape[0], device=x.device), ids.argmax(-1)] @ self.proj


class ClipText(nn.Module):
    """The text tower with CLIP's image projection (D_image, embed_dim) and logit scale (a log; exp() is the
    temperature's inverse)."""

    def __init__(self, facts: TextFacts, image_width: int):
        super().__init__()
        self.text = TextTower(facts)
        self.image_proj = nn.Parameter(torch.zeros(image_width, facts.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text(ids)

    def encode_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """The image tower's pooled features (..., D_image) -> CLIP's image embeddings (..., embed_dim)."""
        return features @ self.image_proj


# OpenAI's and open_clip's full CLIP files: the text tower's keys, the image projection and the logit scale. Its
# blocks are named as the image tower's (convert.OPENAI's rows, without "visual.").
OPENAI_TEXT: list[Row] = [
    (r"token_embedding\.weight", "text.token_embedding.weight", None),
    (r"positional_embedding", "text.pos_embed", None),
    *[(p, f"text.{t}", fn) for p, t, fn in OPENAI if p.startswith(r"transformer\.resblocks")],
    (rf"ln_final\.{_B}", r"text.norm.\1", None),
    (r"text_projection", "text.proj", None),
    (r"visual\.proj", "image_proj", None),
    (r"logit_scale", "logit_scale", None),
]
# the image tower (vidapter's image loaders read it) and what TorchScript archives and open_clip add beside
OPENAI_TEXT_IGNORE = [r"visual\.(?!proj$).+", r"attn_mask", r"input_resolution", r"context_length", r"vocab_size"]


def openai_text_facts(sd: Mapping[str, torch.Tensor], act: str = "quick_gelu", heads: int | None = None) -> TextFacts:
    """The text tower's sizes from an OpenAI-layout state dict (as OpenAI's ``build_model`` reads them; heads: width
    / 64 unless given)."""
    try:
        vocab, width = sd["token_embedding.weight"].shape
        context = sd["positional_embedding"].shape[0]
        embed_dim = sd["text_projection"].shape[1]
    except KeyError as e:
        raise ConversionError(f"openai: no text tower in this file (no {e.args[0]!r})") from None
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    return TextFacts(width, layers, heads or width // 64, embed_dim, context, vocab, act)


def load_clip_text(path: str | os.PathLike, act: str = "quick_gelu", heads: int | None = None) -> ClipText:
    """The text tower, image projection and logit scale of an OpenAI or open_clip CLIP file (a state dict, with or
    without its wrapper), loaded strictly."""
    sd = read_checkpoint(Path(path))  # unwrapped
    facts = openai_text_facts(sd, act, heads)
    model = ClipText(facts, sd["visual.proj"].shape[0] if "visual.proj" in sd else facts.width)
    tensors = convert(sd, OPENAI_TEXT, OPENAI_TEXT_IGNORE, "openai")
    model.load_state_dict(tensors, strict=True)
    return model


# CLIP's Kinetics-700 prompts (openai/CLIP data/prompts.md; Open-VCLIP's text_aug is the same list): the default
# ensemble of zero-shot classification
KINETICS_TEMPLATES = tuple(
    f"a {kind} of {who}{{}}."
    for kind in ("photo", "video", "example", "demonstration")
    for who in ("", "a person ", "a person using ", "a person doing ", "a person during ", "a person performing ",
                "a person practicing ")
)  # fmt: skip


@torch.no_grad()
def class_embeddings(clip: ClipText, names: list[str], templates: tuple[str, ...] | list[str] = KINETICS_TEMPLATES,
                     tokenize=None) -> torch.Tensor:  # fmt: skip
    """(C, embed_dim) unit class embeddings, CLIP's prompt ensemble: every template filled with a name, each
    embedding normalised, their mean normalised again (one template: its normalised embedding)."""
    tokenize = tokenize or tokenizer()
    if not names or not templates:
        raise ValueError("class_embeddings needs at least one class name and one template")
    rows = []
    device = clip.logit_scale.device
    for name in names:
        ids = tokenize([t.format(name) for t in templates], context=clip.text.facts.context).to(device)
        rows.append(F.normalize(F.normalize(clip.encode_text(ids), dim=-1).mean(0), dim=-1))
    return torch.stack(rows)


def video_embedding(clip: ClipText, frame_features: torch.Tensor) -> torch.Tensor:
    """(B, T, D_image) pooled frame features of the image tower -> (B, embed_dim) unit video embeddings, as ViFi-CLIP
    computes them: each frame projected, the mean over T of the unnormalised embeddings, one L2 norm."""
    return F.normalize(clip.encode_image_features(frame_features).mean(1), dim=-1)


def zero_shot_logits(clip: ClipText, video: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Unit video (B, E) and class (C, E) embeddings -> (B, C) logits: exp(logit_scale) x cosine."""
    return clip.logit_scale.exp() * video @ classes.T

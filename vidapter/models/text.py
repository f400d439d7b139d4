"""CLIP's text tower and the tensors that put images and text in one space: the image projection and the logit
scale (openai/CLIP ``clip/model.py`` ``encode_text``, open_clip ``CLIP.encode_text``), with SigLIP's and EVA02-CLIP's
variants; the prompt ensemble, ViFi-CLIP's video embedding and the text head built on them.

``TextTower(ids)`` embeds the token ids, adds the positions, runs the pre-norm blocks (causal for CLIP), takes the
final-normed feature at the end-of-text token (the first position of the largest id, as both do: the end id 49407 is
the largest; SigLIP: the last position) and projects it (``x @ text_projection``, plus SigLIP's bias). The blocks are
vidapter's image blocks. Nothing is normalised inside: callers L2-normalise. ``ClipText`` holds the tower,
``image_proj`` (the image tower's ``proj``; EVA-CLIP's has a bias, SigLIP's is the identity), ``logit_scale`` (its
exponential multiplies the cosine), SigLIP's ``logit_bias`` and the release's tokenizer, read by ``load_clip_text``
from any layout of ``TEXT_LAYOUTS``. ``TextHead`` is the cosine classifier a video model ends in (``model.head=text``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidapter.errors import ConfigError
from vidapter.models.backbones import CLIP_MEAN, CLIP_STD, TEXT_TOWERS, TextFacts, ViTFacts
from vidapter.models.convert import _B, OPENAI, ConversionError, Row, convert, hf_text_rows
from vidapter.models.families.siglip import hf_siglip_text
from vidapter.models.pretrained import (
    HF_ACTS,
    WeightsError,
    check_keys,
    companion_file,
    read_checkpoint,
    read_json,
    resolve_weights,
)
from vidapter.models.tokenizer import JsonTokenizer, SentencePieceTokenizer, tokenizer
from vidapter.models.vit import Attention, Block, LayerNorm, rebase


def block_facts(facts: TextFacts) -> ViTFacts:
    """The facts a vidapter block reads (width, heads, activation, MLP width, LayerNorm in fp32 as CLIP computes
    it)."""
    return ViTFacts(facts.width, facts.layers, facts.heads, 1, 1, facts.act, facts.ln_eps, True, False, False,
                    CLIP_MEAN, CLIP_STD, mlp_hidden=facts.mlp_hidden)  # fmt: skip


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
            blk = Block(block_facts(facts))
            if facts.causal:
                blk.attn = rebase(blk.attn, CausalAttention)
            self.blocks.append(blk)
        self.norm = LayerNorm(facts.width, facts.ln_eps, True)
        self.proj = nn.Parameter(torch.zeros(facts.width, facts.embed_dim))
        self.proj_bias = nn.Parameter(torch.zeros(facts.embed_dim)) if facts.proj_bias else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] > self.facts.context:
            raise ValueError(f"expected token ids (N, L) with L <= {self.facts.context}, got {tuple(ids.shape)}")
        x = self.token_embedding(ids) + self.pos_embed[: ids.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        if self.facts.pool == "last":
            x = x[:, -1] @ self.proj
        else:
            x = x[torch.arange(x.shape[0], device=x.device), ids.argmax(-1)] @ self.proj
        return x + self.proj_bias if self.proj_bias is not None else x


class ClipText(nn.Module):
    """The text tower with CLIP's image projection (D_image, embed_dim) and logit scale (a log; exp() is the
    temperature's inverse)."""

    def __init__(self, facts: TextFacts, image_width: int):
        super().__init__()
        self.text = TextTower(facts)
        self.image_proj = nn.Parameter(torch.zeros(image_width, facts.embed_dim))  # SigLIP's: the identity
        self.image_proj_bias = nn.Parameter(torch.zeros(facts.embed_dim)) if facts.image_proj_bias else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.logit_bias = nn.Parameter(torch.zeros(())) if facts.logit_bias else None
        self.tokenize = None  # the tokenizer of the release (set by the loader; None: CLIP's BPE)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text(ids)

    def encode_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """The image tower's pooled features (..., D_image) -> CLIP's image embeddings (..., embed_dim)."""
        x = features @ self.image_proj.to(features.dtype)
        return x + self.image_proj_bias.to(x.dtype) if self.image_proj_bias is not None else x


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
# open_clip's custom-text models and EVA-CLIP's originals keep the same text tower under "text."; their image
# projection is a Linear with bias: EVA-CLIP's ``visual.head``, timm's ``visual.trunk.head`` in open_clip's files
CUSTOM_TEXT: list[Row] = [
    *[(r"text\." + p, t, fn) for p, t, fn in OPENAI_TEXT if p.startswith((r"token", r"positional", r"transformer",
                                                                          r"ln_final", r"text_projection"))],
    (r"visual\.(?:trunk\.)?head\.weight", "image_proj", torch.t),
    (r"visual\.(?:trunk\.)?head\.bias", "image_proj_bias", None),
    (r"logit_scale", "logit_scale", None),
]  # fmt: skip
CUSTOM_TEXT_IGNORE = [r"visual\.(?!(trunk\.)?head\.(weight|bias)$).+", r"text\.attn_mask"]
# the image tower (vidapter's image loaders read it: in OpenAI's names, or timm's as in the demo CLIP) and what
# TorchScript archives and open_clip add beside
OPENAI_TEXT_IGNORE = [r"visual\.(?!proj$).+", r"attn_mask", r"input_resolution", r"context_length", r"vocab_size",
                      r"(patch_embed|blocks|norm_pre|norm)\..+", r"cls_token", r"pos_embed"]  # fmt: skip


# Hugging Face CLIPModel directories (transformers CLIPTextTransformer): the text projection is a Linear (E, W)
HF_CLIP_TEXT: list[Row] = [
    *hf_text_rows(),
    (r"text_projection\.weight", "text.proj", torch.t),
    (r"visual_projection\.weight", "image_proj", torch.t),
    (r"logit_scale", "logit_scale", None),
]
HF_CLIP_TEXT_IGNORE = [r"vision_model\..+", r"text_model\.embeddings\.position_ids"]


# The text layouts: (marker key, converter to ClipText's names); the first whose marker a file has is its layout.
# The image projection comes out of every converter as ``image_proj`` (D_image, E) (SigLIP's: the identity).
def _table(table: list[Row], ignore: list[str], name: str):
    return lambda sd: convert(sd, table, ignore, name)


TEXT_LAYOUTS = {
    "hf_siglip": ("text_model.head.weight", hf_siglip_text),  # SigLIP's family module holds its table
    "hf_clip": ("text_model.embeddings.token_embedding.weight", _table(HF_CLIP_TEXT, HF_CLIP_TEXT_IGNORE, "hf_clip")),
    "openai": ("token_embedding.weight", _table(OPENAI_TEXT, OPENAI_TEXT_IGNORE, "openai")),
    "custom_text": ("text.token_embedding.weight", _table(CUSTOM_TEXT, CUSTOM_TEXT_IGNORE, "custom_text")),
}  # fmt: skip


def text_layout(sd: Mapping[str, torch.Tensor]) -> str | None:
    """The text tower's layout of a full CLIP-style file (None: it holds no text tower)."""
    return next((name for name, (marker, *_) in TEXT_LAYOUTS.items() if marker in sd), None)


def text_facts_of(sd: Mapping[str, torch.Tensor], layout: str, act: str = "quick_gelu", heads: int | None = None,
                  config: dict | None = None) -> TextFacts:  # fmt: skip
    """The text tower's sizes read from the tensors; heads, activation and eps from a Hugging Face ``config``'s
    ``text_config`` where given (else ``heads``, or width / 64 as OpenAI's ``build_model``, and ``act``)."""
    config = config or {}
    hf = "text_model.embeddings."
    names = {
        "openai": ("token_embedding.weight", "positional_embedding", "text_projection", "transformer.resblocks."),
        "hf_clip": (hf + "token_embedding.weight", hf + "position_embedding.weight", "text_projection.weight",
                    "text_model.encoder.layers."),
        "hf_siglip": (hf + "token_embedding.weight", hf + "position_embedding.weight", "text_model.head.weight",
                      "text_model.encoder.layers."),
        "custom_text": ("text.token_embedding.weight", "text.positional_embedding", "text.text_projection",
                        "text.transformer.resblocks."),
    }[layout]  # fmt: skip
    vocab, width = sd[names[0]].shape
    context = sd[names[1]].shape[0]
    embed_dim = sd[names[2]].shape[1 if layout in ("openai", "custom_text") else 0]
    layers = len({k[len(names[3]) :].split(".")[0] for k in sd if k.startswith(names[3])})
    heads = config.get("num_attention_heads", heads) or max(1, width // 64)
    if layout == "hf_siglip":
        hidden = sd[f"{names[3]}0.mlp.fc1.weight"].shape[0]
        eps = config.get("layer_norm_eps", 1e-6)
        return TextFacts(width, layers, heads, embed_dim, context, vocab, "gelu_tanh", eps,
                         None if hidden == 4 * width else hidden, causal=False, pool="last", proj_bias=True,
                         logit_bias=True, tokenizer="sentencepiece", image_feature="pool")  # fmt: skip
    act = HF_ACTS.get(config.get("hidden_act"), config.get("hidden_act", act))
    return TextFacts(width, layers, heads, embed_dim, context, vocab, act, config.get("layer_norm_eps", 1e-5),
                     image_proj_bias=layout == "custom_text")  # fmt: skip


def hf_text_config(path: Path) -> tuple[Path, dict]:
    """A Hugging Face directory's config.json ``text_config``: the heads, activation and eps the tensors cannot show."""
    config = path / "config.json" if path.is_dir() else path.parent / "config.json"
    return config, (read_json(config).get("text_config") or {}) if config.exists() else {}


def _check_hf_text_config(config: Path, text: dict, facts: TextFacts) -> None:
    for key, want in (("num_attention_heads", facts.heads), ("hidden_act", facts.act),
                      ("layer_norm_eps", facts.ln_eps)):  # fmt: skip
        got = HF_ACTS.get(text[key], text[key]) if key == "hidden_act" and key in text else text.get(key, want)
        if got != want:
            raise WeightsError(f"{config}: text_config.{key} is {text[key]!r}, but the text tower of this row has "
                               f"{want!r}: name the row these weights were made for")  # fmt: skip


def load_clip_text(spec: str | os.PathLike, facts: TextFacts | str | None = None, *, act: str = "quick_gelu",
                   heads: int | None = None, trust_pickle: bool = False) -> ClipText:  # fmt: skip
    """The text tower, image projection and logit scale (and SigLIP's logit bias and tokenizer) of a full release,
    loaded strictly: an OpenAI TorchScript archive or state dict, an open_clip file of an OpenAI-architecture model
    (OpenAI, LAION, DataComp), a Hugging Face ``CLIPModel`` or ``SiglipModel`` directory; ``spec`` is a path or a
    published name.

    ``facts``: the text tower's row (a backbone row name with a text tower, or ``TextFacts``); None: its sizes read
    from the file, with ``act`` and ``heads`` (width / 64 unless given) where its metadata does not say them."""
    if isinstance(facts, str):
        if facts not in TEXT_TOWERS:
            raise WeightsError(f"backbone {facts!r} has no text tower; rows with one: {', '.join(TEXT_TOWERS)}")
        facts = TEXT_TOWERS[facts]
    path = resolve_weights(str(spec))
    sd = read_checkpoint(path, trust_pickle=trust_pickle)  # unwrapped
    layout = text_layout(sd)
    if layout is None:
        raise WeightsError(f"{path}: no text tower in this file (neither OpenAI's token_embedding.weight nor "
                           "Hugging Face's text_model.*): it holds an image tower alone")  # fmt: skip
    if layout.startswith("hf_"):
        config, text = hf_text_config(path)
        facts = facts or text_facts_of(sd, layout, act, heads, text)
        _check_hf_text_config(config, text, facts)
    facts = facts or text_facts_of(sd, layout, act, heads)
    # whether the image projection has a bias is the layout's (PE-Core's originals: none; open_clip's timm head: one)
    facts = replace(facts, image_proj_bias=layout == "custom_text")
    try:
        tensors = TEXT_LAYOUTS[layout][1](sd)
    except ConversionError as e:
        raise WeightsError(f"{path}: {e}") from e
    if "image_proj" not in tensors:
        raise WeightsError(f"{path}: no image projection beside the text tower ({layout}): the text tower cannot "
                           "be used without it")  # fmt: skip
    model = ClipText(facts, tensors["image_proj"].shape[0])
    check_keys(tensors, model.state_dict(), f"{path} ({layout}): its text tower does not fit {facts}")
    model.load_state_dict(tensors, strict=True)
    model.tokenize = release_tokenizer(str(spec), path, facts)
    return model


def release_tokenizer(spec: str, path: Path, facts: TextFacts):
    """The tokenizer a text tower was trained with: CLIP's BPE (None: the shared one), or the model directory's own
    (SigLIP's ``spiece.model``; SigLIP 2's Gemma ``tokenizer.json``). A SigLIP tower whose row is read from its file
    takes the tokenizer the directory holds."""
    if facts.tokenizer == "clip":
        return None
    kind = facts.tokenizer
    beside = not companion_file(spec, path, "spiece.model").exists()
    if kind == "sentencepiece" and beside and companion_file(spec, path, "tokenizer.json").exists():
        kind = "gemma"
    if kind == "gemma":
        return JsonTokenizer(companion_file(spec, path, "tokenizer.json"))
    return SentencePieceTokenizer(companion_file(spec, path, "spiece.model"))


# CLIP's Kinetics-700 prompts (openai/CLIP data/prompts.md; Open-VCLIP's text_aug is the same list): the default
# ensemble of zero-shot classification
KINETICS_TEMPLATES = tuple(
    f"a {kind} of {who}{{}}."
    for kind in ("photo", "video", "example", "demonstration")
    for who in ("", "a person ", "a person using ", "a person doing ", "a person during ", "a person performing ",
                "a person practicing ")
)  # fmt: skip


def check_prompts(names: list[str], templates: tuple[str, ...] | list[str]) -> None:
    """Class names and templates a text tower can read: at least one of each, every template with one ``{}``, no
    name empty or holding CLIP's start/end marks (the feature is read at the first end mark)."""
    if not names:
        raise ConfigError("no class names: give at least one")
    if not templates:
        raise ConfigError("no prompt templates: give at least one, such as 'a video of a person {}.'")
    for t in templates:
        if t.count("{}") != 1:
            raise ConfigError(f"prompt template {t!r}: expected exactly one {{}} where the class name goes")
    for i, name in enumerate(names):
        if not name.strip():
            raise ConfigError(f"class name {i + 1} is empty")
        if "<|endoftext|>" in name or "<|startoftext|>" in name:
            raise ConfigError(f"class name {i + 1} ({name!r}) holds CLIP's start or end mark")


@torch.no_grad()
def class_embeddings(clip: ClipText, names: list[str], templates: tuple[str, ...] | list[str] = KINETICS_TEMPLATES,
                     tokenize=None) -> torch.Tensor:  # fmt: skip
    """(C, embed_dim) unit class embeddings, CLIP's prompt ensemble: every template filled with a name, each
    embedding normalised, their mean normalised again (one template: its normalised embedding)."""
    tokenize = tokenize or clip.tokenize or tokenizer()
    check_prompts(names, templates)
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
    """Unit video (B, E) and class (C, E) embeddings -> (B, C) logits: exp(logit_scale) x cosine (+ SigLIP's bias)."""
    logits = clip.logit_scale.exp() * video @ classes.T
    return logits + clip.logit_bias if clip.logit_bias is not None else logits


class TextHead(nn.Module):
    """CLIP's classifier on a video feature: ``exp(logit_scale) x cos(x @ proj, classes)``, the class embeddings
    computed from the class names by the text tower (``class_embeddings``). ``proj`` is the image projection and stays
    as loaded; ``logit_scale`` (the learnable temperature, initialised from the model's) trains; the class embeddings
    train with ``train_classes`` (Open-VCLIP's tuned text head: the stored rows stay unnormalised, the forward
    normalises them) or stay fixed. Built with zeros: ``set_classes`` fills them."""

    def __init__(self, width: int, embed_dim: int, num_classes: int, *, train_classes: bool, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Parameter(torch.zeros(width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.train_classes = train_classes
        self.register_buffer("logit_bias", torch.zeros(()))  # SigLIP's, fixed; 0 for CLIP
        self.register_buffer("proj_bias", torch.zeros(embed_dim))  # EVA-CLIP's image projection has a bias
        self.sigmoid = False  # SigLIP: the scores are sigmoid(logits), one per class (the builder sets it)
        classes = torch.zeros(num_classes, embed_dim)
        if train_classes:
            self.classes = nn.Parameter(classes)
        else:
            self.register_buffer("classes", classes)

    def trainable_params(self) -> list[str]:
        return ["logit_scale"] + (["classes"] if self.train_classes else [])

    @property
    def num_classes(self) -> int:
        return self.classes.shape[0]

    @torch.no_grad()
    def set_classes(self, clip: ClipText, embeddings: torch.Tensor) -> None:
        """Take the image projection and logit scale of ``clip`` and the (C, E) class ``embeddings``; C may differ
        from the head's (zero-shot with other names)."""
        self.proj.data = clip.image_proj.detach().to(self.proj).clone()
        if clip.image_proj_bias is not None:
            self.proj_bias = clip.image_proj_bias.detach().to(self.proj_bias).clone()
        self.logit_scale.data = clip.logit_scale.detach().to(self.logit_scale).clone()
        if clip.logit_bias is not None:
            self.logit_bias = clip.logit_bias.detach().to(self.logit_bias).clone()
        self.sigmoid = clip.logit_bias is not None
        emb = embeddings.detach().to(self.proj)
        if self.train_classes:
            self.classes = nn.Parameter(emb.clone(), requires_grad=self.classes.requires_grad)
        else:
            self.classes = emb.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        video = F.normalize(self.dropout(x) @ self.proj.to(x.dtype) + self.proj_bias.to(x.dtype), dim=-1)
        return self.logit_scale.exp() * video @ F.normalize(self.classes.to(x.dtype), dim=-1).T + self.logit_bias

"""Checkpoint layouts: every key vocabulary vidapter reads weights in, and the one ordered list that recognises them.

A layout is a name, a recogniser (marker keys, never the architecture: the backbone row says that) and a converter
to vidapter's names. ``detect_layout`` asks the layouts in ``LAYOUTS`` order and takes the first that recognises the
file, so the order is the precedence, stated here once: the families whose files also carry another layout's markers
come first (a PE-Core file has OpenAI's ``conv1``; timm's Eva files and DINOv2's originals have timm's
``patch_embed``). A layout without a recogniser is read only when named. ``register_layout`` adds one of your own
(before a named layout, or last). tests/models/test_layouts.py checks that a file of every layout is recognised as
itself. The converters of a family's own releases are in its module (``models/families/``); those of shared
vocabularies (OpenAI's, timm's, open_clip's, Google's npz, Hugging Face CLIP) in ``convert.py`` and
``convert_upstream.py``. The Hugging Face layouts accept both the names of the published files and the names
``state_dict()`` returns in transformers 5.x, which renames some keys at load time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from vidapter.models import convert as base
from vidapter.models import convert_upstream as up
from vidapter.models.families import dinov2, dinov3, eva02, pe_core, siglip

Converter = Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Layout:
    """``recognise(keys) -> bool`` (None: only read when named); ``convert(state_dict)`` -> vidapter's names;
    ``image``: image-backbone weights (False: a method's released video model, read by ``vidapter convert``)."""

    name: str
    recognise: Callable[[set[str]], bool] | None
    convert: Converter
    image: bool = True


LAYOUTS: list[Layout] = [
    # the families' own originals and open_clip's timm towers: before OpenAI (conv1) and timm (patch_embed)
    Layout("open_clip_timm", up.is_open_clip_timm, up.open_clip_timm_to_vit),
    Layout("pe", pe_core.is_pe, pe_core.pe_to_vit),
    Layout("eva_clip", eva02.is_eva_clip, eva02.eva_clip_to_vit),
    Layout("dinov3", dinov3.is_dinov3, dinov3.dinov3_to_vit),
    Layout("dinov2", dinov2.is_dinov2, dinov2.dinov2_to_vit),
    Layout("timm_eva", up.is_timm_eva, up.timm_eva_to_vit),
    # Hugging Face transformers: SigLIP before HF CLIP (same names, no class embedding)
    Layout("hf_dinov2", dinov2.is_hf_dinov2, dinov2.hf_dinov2_to_vit),
    Layout("hf_dinov3", dinov3.is_hf_dinov3, dinov3.hf_dinov3_to_vit),
    Layout("hf_siglip", siglip.is_hf_siglip, siglip.hf_siglip_to_vit),
    # a released AIM/ZeroI2V video model (MMAction2 names around an OpenAI-layout backbone): before OpenAI
    Layout("aim_official", base.is_aim_official, base.aim_official_to_vidapter, image=False),
    Layout("hf_clip", base.is_hf_clip, base.hf_clip_to_vit),
    Layout("openai", base.is_openai, base.openai_to_vit),
    # timm's VisionTransformer vocabulary (CLIP, SigLIP, DINOv2, PE-Core): the complete converter, which also adds
    # the zero biases a layout leaves out by design (no qkv bias; DINOv3's absent key bias)
    Layout("timm", base.is_timm, up.timm_vit_to_vit),
    Layout("jax_npz", base.is_jax_npz, base.jax_npz_to_vit),
    # read only when named
    Layout("open_clip", None, base.openai_to_vit),
    Layout("timm_vit", None, up.timm_vit_to_vit),
]


def register_layout(layout: Layout, *, before: str | None = None, replace: bool = False) -> Layout:
    """Add ``layout`` to ``LAYOUTS``, ahead of the layout named ``before`` (its files would be taken by it
    otherwise) or last; ``replace=True`` redefines one of that name in its place."""
    names = [x.name for x in LAYOUTS]
    if layout.name in names:
        if not replace:
            raise ValueError(f"a layout named {layout.name!r} is registered already (replace=True redefines it)")
        LAYOUTS[names.index(layout.name)] = layout
        return layout
    if before is not None and before not in names:
        raise ValueError(f"no layout named {before!r} to put {layout.name!r} before; layouts: {', '.join(names)}")
    LAYOUTS.insert(names.index(before) if before else len(LAYOUTS), layout)
    return layout


def get_layout(name: str) -> Layout:
    for layout in LAYOUTS:
        if layout.name == name:
            return layout
    raise base.ConversionError(f"unknown layout {name!r}; known: {', '.join(x.name for x in LAYOUTS)}")


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The first layout of ``LAYOUTS`` that recognises these keys; a ConversionError naming a few keys otherwise."""
    keys = set(state_dict)
    for layout in LAYOUTS:
        if layout.recognise is not None and layout.recognise(keys):
            return layout.name
    sample = ", ".join(sorted(keys)[:6])
    known = ", ".join(x.name for x in LAYOUTS if x.recognise is not None)
    raise base.ConversionError(f"cannot tell the checkpoint layout from its keys (first: {sample}); known: {known}")


def image_layouts() -> dict[str, Converter]:
    """The image-backbone layouts' converters, by name."""
    return {x.name: x.convert for x in LAYOUTS if x.image}

"""The ordered list of checkpoint layouts: a file of every layout that can be recognised is recognised as itself (by
the one ``detect_layout``, whatever comes before it in the list), and a layout of your own takes its place in the
order."""

from __future__ import annotations

import pytest
import torch
from peers import HEADS, PATCH, SIZE, WIDTH, hf_clip_vision, open_clip_model, timm_vit
from reference.aim import I3DHead, Recognizer3D, ViT_CLIP
from test_convert_hf import CASES as HF_CASES
from test_convert_upstream import CASES as UPSTREAM_CASES
from test_vit import _timm_to_original_npz

from vidapter.models import layouts
from vidapter.models.convert import ConversionError
from vidapter.models.layouts import LAYOUTS, Layout, detect_layout, get_layout, register_layout


def _first(cases, fmt, make):
    return lambda: make(next(c for c in cases if c.fmt == fmt))


# a file of each layout, as the peer libraries (or the official code's transcription) write it
SAMPLES = {
    "openai": lambda: open_clip_model().state_dict(),
    "hf_clip": lambda: hf_clip_vision().state_dict(),
    "timm": lambda: timm_vit().state_dict(),
    "jax_npz": lambda: _timm_to_original_npz(timm_vit()),
    "aim_official": lambda: Recognizer3D(ViT_CLIP(SIZE, 4, PATCH, WIDTH, 2, HEADS, 0.5, 1),
                                         I3DHead(3, WIDTH)).state_dict(),
    **{f: _first(HF_CASES, f, lambda c: c.build_hf().state_dict()) for f in ("hf_siglip", "hf_dinov2", "hf_dinov3")},
    **{f: _first(UPSTREAM_CASES, f, lambda c: c.make()[1])
       for f in ("open_clip_timm", "pe", "eva_clip", "dinov3", "dinov2", "timm_eva")},
}  # fmt: skip


def test_every_layout_that_can_be_recognised_has_a_file_here():
    assert set(SAMPLES) == {x.name for x in LAYOUTS if x.recognise is not None}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_file_of_each_layout_is_recognised_as_itself(name):
    assert detect_layout(SAMPLES[name]()) == name


def test_the_openai_file_of_a_mmaction_release_and_an_open_clip_file():
    assert detect_layout(open_clip_model().visual.state_dict()) == "openai"  # the tower alone, without "visual."
    with pytest.raises(ConversionError, match=r"cannot tell the checkpoint layout.*first: a, b"):
        detect_layout({"a": torch.zeros(1), "b": torch.zeros(1)})
    with pytest.raises(ConversionError, match="unknown layout 'nope'; known: open_clip_timm, pe, "):
        get_layout("nope")


@pytest.fixture
def restore_layouts():
    saved = list(LAYOUTS)
    yield
    LAYOUTS[:] = saved


def test_a_layout_of_your_own_takes_its_place_in_the_order(restore_layouts):
    """Files in a vocabulary of your own (here: timm's names under "encoder.") recognised before timm's."""
    mine = Layout("my_encoder", lambda keys: "encoder.patch_embed.proj.weight" in keys,
                  lambda sd: {k.removeprefix("encoder."): v for k, v in sd.items()})  # fmt: skip
    register_layout(mine, before="timm")
    names = [x.name for x in LAYOUTS]
    assert names.index("my_encoder") == names.index("timm") - 1
    sd = {f"encoder.{k}": v for k, v in timm_vit().state_dict().items()}
    assert detect_layout(sd) == "my_encoder" and set(layouts.image_layouts()["my_encoder"](sd)) == {
        k.removeprefix("encoder.") for k in sd}  # fmt: skip
    with pytest.raises(ValueError, match="a layout named 'my_encoder' is registered already"):
        register_layout(mine)
    with pytest.raises(ValueError, match="no layout named 'nope' to put 'x' before"):
        register_layout(Layout("x", None, dict), before="nope")

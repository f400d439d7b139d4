"""Converters fail loud: unknown keys, missing or misshapen tensors, unknown layouts are errors that name the keys."""

from __future__ import annotations

import pytest
import torch
from peers import WIDTH, hf_clip_vision, open_clip_model, timm_vit

from vidapter.models.convert import (
    ConversionError,
    hf_clip_to_vit,
    openai_to_vit,
    timm_to_vit,
    unwrap,
)
from vidapter.models.pretrained import WeightsError, load_backbone
from vidapter.models.vit import build_vit


def test_openai_with_and_without_visual_prefix_agree():
    sd = open_clip_model().state_dict()
    visual = {k[len("visual.") :]: v for k, v in sd.items() if k.startswith("visual.")}
    a, b = openai_to_vit(sd), openai_to_vit(visual)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["cls_token"].shape == (1, 1, WIDTH) and a["pos_embed"].shape == (1, 17, WIDTH)
    assert "proj" not in a


@pytest.mark.parametrize(
    "convert, make, extra",
    [
        (openai_to_vit, lambda: open_clip_model().visual.state_dict(), "transformer.resblocks.0.ls_1.gamma"),
        (hf_clip_to_vit, lambda: hf_clip_vision().state_dict(), "encoder.layers.0.self_attn.rotary.weight"),
        (timm_to_vit, lambda: timm_vit().state_dict(), "blocks.0.attn.q_norm.weight"),
    ],
)
def test_unknown_key_raises_naming_it(convert, make, extra):
    sd = make()
    sd[extra] = torch.zeros(WIDTH)
    with pytest.raises(ConversionError, match=extra.replace(".", r"\.")):
        convert(sd)


def test_unknown_key_beside_a_full_clip_is_named():
    sd = open_clip_model().state_dict()
    sd["mystery.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"outside the image and text towers: mystery\.weight"):
        openai_to_vit(sd)


def test_missing_qkv_part_raises():
    sd = hf_clip_vision().state_dict()
    del sd["encoder.layers.1.self_attn.k_proj.weight"]
    with pytest.raises(ConversionError, match=r"blocks\.1\.attn\.qkv\.weight' needs 3 parts, found parts \[0, 2\]"):
        hf_clip_to_vit(sd)


def test_missing_and_misshapen_keys_are_named_on_load(tmp_path):
    sd = timm_vit().state_dict()
    del sd["blocks.1.norm2.bias"]
    sd["blocks.0.mlp.fc1.weight"] = sd["blocks.0.mlp.fc1.weight"][:10]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsError) as e:
        load_backbone(build_vit("tiny_in21k"), str(tmp_path / "bad.pth"))
    msg = str(e.value)
    assert "missing: blocks.1.norm2.bias" in msg
    assert "wrong shape: blocks.0.mlp.fc1.weight (10, 64) != (256, 64)" in msg


def test_weights_of_another_architecture_are_refused(tmp_path):
    """An IN-21K timm file (patch bias, no pre-norm) does not load into a CLIP row: the facts differ."""
    torch.save(timm_vit().state_dict(), tmp_path / "in21k.pth")
    with pytest.raises(
        WeightsError, match=r"missing: norm_pre.bias, norm_pre.weight; unexpected: patch_embed.proj.bias"
    ):
        load_backbone(build_vit("tiny_clip"), str(tmp_path / "in21k.pth"))


def test_unwrap_wrappers():
    t = torch.zeros(1)
    assert unwrap({"state_dict": {"module.a": t}}) == {"a": t}
    assert unwrap({"model": {"a": t}, "epoch": 3}) == {"a": t}
    with pytest.raises(ConversionError, match="expected a state dict"):
        unwrap([t])


def test_pickle_with_python_objects_is_refused_by_default(tmp_path):
    class Thing:
        pass

    import sys

    sys.modules[__name__].Thing = Thing  # picklable by reference
    Thing.__qualname__ = "Thing"
    torch.save({"state_dict": timm_vit().state_dict(), "meta": Thing()}, tmp_path / "obj.pth")
    with pytest.raises(WeightsError, match=r"obj\.pth: holds Python objects.*trust_pickle=True"):
        load_backbone(build_vit("tiny_in21k"), str(tmp_path / "obj.pth"))
    report = load_backbone(build_vit("tiny_in21k"), str(tmp_path / "obj.pth"), trust_pickle=True)
    assert report.format == "timm"

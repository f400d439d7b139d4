"""Exact trainable sets and counts (the paper's), adapter-only export and its backbone identity check."""

from __future__ import annotations

import pytest
import torch
from peers import SIZE, randomize_

from vidapter.adapters.peft import (
    backbone_digest,
    count_parameters,
    export_adapters,
    load_adapters,
    peft_parameter_names,
)
from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.presets import get_preset


def _meta_model(preset: str):
    cfg = get_preset(preset).model
    cfg.pretrained = None
    with torch.device("meta"):
        return build_model(cfg)


@pytest.mark.parametrize(
    "preset, total, trainable",
    [
        ("k400_vitb16_8f", 96_764_560, 10_966_672),  # paper: 97M, 10.97M
        ("ssv2_vitb16_8f", 100_141_230, 14_343_342),  # paper: 100M, 14.34M
        ("k400_vitl14_8f", 341_438_864, 38_261_136),  # paper: 341M, 38M
        ("ssv2_vitl14_8f", 353_820_846, 50_643_118),  # paper: 354M, 50M
    ],
)
def test_counts_match_the_paper(preset, total, trainable):
    counts = count_parameters(_meta_model(preset))
    assert (counts["total"], counts["trainable"]) == (total, trainable)


def test_trainable_set_is_exactly_adapters_temporal_embed_final_norm_head():
    model = _meta_model("k400_vitb16_8f")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    expected = ["temporal_embed", "backbone.norm.weight", "backbone.norm.bias", "head.fc.weight", "head.fc.bias"]
    for i in range(12):
        for a in ("s_adapter", "t_adapter", "mlp_adapter"):
            expected += [f"backbone.blocks.{i}.{a}.fc{j}.{w}" for j in (1, 2) for w in ("weight", "bias")]
    assert sorted(trainable) == sorted(expected)
    assert sorted(peft_parameter_names(model)) == sorted(expected)


def _tiny(**kw):
    cfg = ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=5, **kw)
    return cfg, randomize_(build_model(cfg), 0).eval()


def test_adapter_export_round_trip(tmp_path, video):
    cfg, model = _tiny()
    path = export_adapters(model, tmp_path / "adapters.safetensors", backbone="tiny_clip")
    assert path.stat().st_size < 200_000  # trainable tensors only
    fresh = build_model(cfg).eval()
    image = {k: v for k, v in model.state_dict().items() if k in dict(fresh.named_parameters())}
    fresh.load_state_dict({k: v for k, v in image.items() if not fresh.get_parameter(k).requires_grad}, strict=False)
    assert backbone_digest(fresh) == backbone_digest(model)
    meta = load_adapters(fresh, path)
    assert meta["backbone"] == "tiny_clip"
    with torch.no_grad():
        torch.testing.assert_close(fresh(video), model(video))


def test_adapters_refuse_a_different_backbone(tmp_path):
    cfg, model = _tiny()
    path = export_adapters(model, tmp_path / "a.safetensors", backbone="tiny_clip")
    other = randomize_(build_model(cfg), seed=9)
    with pytest.raises(ValueError, match=r"trained on backbone 'tiny_clip' with weights sha256"):
        load_adapters(other, path)


def test_adapters_refuse_a_different_trainable_set(tmp_path):
    _, model = _tiny()
    path = export_adapters(model, tmp_path / "a.safetensors", backbone="tiny_clip")
    cfg2 = ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=5, sections={"aim": {"num_tadapter": 2}})
    other = build_model(cfg2)
    other.load_state_dict(model.state_dict(), strict=False)
    with pytest.raises(ValueError, match=r"missing: backbone.blocks.0.t_adapter_in"):
        load_adapters(other, path)


def test_adapter_export_of_a_fully_finetuned_model_is_refused(tmp_path):
    _, model = _tiny(finetune="full")
    with pytest.raises(ValueError, match="use save_pretrained"):
        export_adapters(model, tmp_path / "a.safetensors", backbone="tiny_clip")


def test_digest_ignores_trained_parts_and_sees_frozen_ones():
    _, model = _tiny()
    d = backbone_digest(model)
    with torch.no_grad():
        model.backbone.norm.weight.add_(1)
        model.backbone.blocks[0].s_adapter.fc1.weight.add_(1)
    assert backbone_digest(model) == d
    with torch.no_grad():
        model.backbone.blocks[1].attn.qkv.weight[0, 0] += 1e-3
    assert backbone_digest(model) != d


def test_video_input_size(video):
    assert video.shape[-1] == SIZE

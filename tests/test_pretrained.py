"""Model directories, named weights and the offline path."""

from __future__ import annotations

import json

import pytest
import torch
from peers import randomize_

from vidapter.classifier import build_model, from_pretrained, save_pretrained
from vidapter.config import Config, ModelConfig
from vidapter.models.pretrained import WEIGHTS, WeightsError, resolve_weights


def test_save_and_load_a_model_directory(tmp_path, video):
    cfg = Config(
        "tiny",
        ModelConfig(
            backbone="tiny_clip", num_frames=4, num_classes=3, sections={"aim": {"num_tadapter": 2, "scale": 1.0}}
        ),
    )
    model = randomize_(build_model(cfg.model)).eval()
    names = ["air drumming", "abseiling", "playing  bagpipes"]  # Kinetics names have spaces (kept, even doubled)
    save_pretrained(model, cfg, tmp_path / "m", class_names=names)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["classes.txt", "config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["config"]["model"]["aim"]["num_tadapter"] == 2 and len(meta["backbone_sha256"]) == 64
    loaded, cfg2, _ = from_pretrained(tmp_path / "m")
    assert cfg2 == cfg and from_pretrained(tmp_path / "m")[2] == names
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), model(video), atol=0, rtol=0)
    assert [n for n, p in loaded.named_parameters() if p.requires_grad] == [
        n for n, p in model.named_parameters() if p.requires_grad
    ]


def test_class_name_count_must_match(tmp_path):
    cfg = Config("tiny", ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=3))
    with pytest.raises(ValueError, match="2 class names for a model with 3 classes"):
        save_pretrained(build_model(cfg.model), cfg, tmp_path, class_names=["a", "b"])


def test_not_a_model_directory(tmp_path):
    with pytest.raises(WeightsError, match="not a vidapter model directory"):
        from_pretrained(tmp_path)


def test_offline_named_weights_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDAPTER_CACHE", str(tmp_path))
    monkeypatch.setenv("VIDAPTER_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        resolve_weights("openai:ViT-B/16")
    msg = str(e.value)
    assert WEIGHTS["openai:ViT-B/16"].url in msg and str(tmp_path / "ViT-B-16.pt") in msg


def test_named_weights_found_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDAPTER_CACHE", str(tmp_path))
    (tmp_path / "ViT-L-14.pt").write_bytes(b"x")
    assert resolve_weights("openai:ViT-L/14") == tmp_path / "ViT-L-14.pt"


def test_openai_sha256_comes_from_the_published_address():
    w = WEIGHTS["openai:ViT-B/16"]
    assert w.sha256 == "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"
    assert WEIGHTS["timm:vit_base_patch16_224_in21k"].sha256 is None


def test_named_weights_for_another_backbone_are_refused():
    with pytest.raises(WeightsError, match="is for backbone clip_vitl14, not clip_vitb16"):
        build_model(ModelConfig(pretrained="openai:ViT-L/14"))


def test_missing_path_is_named():
    with pytest.raises(WeightsError, match=r"'/nope/vit.pth': no such file"):
        resolve_weights("/nope/vit.pth")

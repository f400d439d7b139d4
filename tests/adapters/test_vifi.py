"""ViFi-CLIP: a converted released checkpoint gives the official model's logits (tests/reference/vifi.py on the same
random weights), and each training mode trains the official model's tensors."""

from __future__ import annotations

import pytest
import torch
from official import convert_official
from peers import open_clip_model, randomize_
from reference.vifi import ViFiCLIP, official_checkpoint

from vidapter.classifier import build_model
from vidapter.config import ModelConfig

NAMES = ["juggling", "archery", "tai chi"]


def _official(use: str = "both") -> ViFiCLIP:
    import open_clip

    clip = open_clip_model(vocab=49408, context=77)
    model = ViFiCLIP(NAMES, clip, open_clip.tokenize, use=use).eval()
    return randomize_(model, seed=3)  # "trained": every tensor moved off the CLIP it started from


def test_converted_release_gives_the_official_logits(tmp_path, clip_file):
    official = _official()
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    # the token embedding, which the released files lack, comes from the CLIP the model started from
    model, cfg = convert_official(tmp_path, "vifi-official", official_checkpoint(official), "vifi_k400_vitb16_16f",
                                  "--class-names", str(tmp_path / "names.txt"), "--model.num_frames=4",
                                  backbone=torch.load(clip_file))  # fmt: skip
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = official(video.transpose(1, 2))  # the official model reads (B, T, 3, H, W)
        torch.testing.assert_close(model(video), want, atol=1e-5, rtol=0)
    assert cfg.model.method == "vifi" and cfg.model.num_classes == 3


@pytest.mark.parametrize("use", ["both", "image", "text"])
def test_each_mode_trains_what_the_official_model_trains(use, clip_file):
    official = _official(use)
    want = sum(p.numel() for p in official.parameters() if p.requires_grad)
    cfg = ModelConfig(backbone="tiny_clip", pretrained=str(clip_file), num_frames=4, num_classes=3, method="vifi",
                      adapters=[], sections={"vifi": {"train": use}})  # fmt: skip
    ours = build_model(cfg, class_names=NAMES)
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert sum(p.numel() for n, p in ours.named_parameters() if n in trainable) == want
    assert "head.clip.text.token_embedding.weight" not in trainable  # never a parameter of the official model
    assert ("head.clip.logit_scale" in trainable) == (use == "both")


def test_inference_reuses_the_class_embeddings_until_the_text_tower_changes(clip_file):
    cfg = ModelConfig(backbone="tiny_clip", pretrained=str(clip_file), num_frames=4, num_classes=3, method="vifi",
                      adapters=[])  # fmt: skip
    model = build_model(cfg, class_names=NAMES).eval()
    video = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model(video)
        cached = model.head._cache[1]
        assert torch.equal(model(video), first) and model.head._cache[1] is cached  # computed once
        model.head.clip.text.norm.weight.mul_(1.5)  # as an optimizer step or a load would
        again = model(video)
    assert model.head._cache[1] is not cached and not torch.equal(again, first)
    assert torch.equal(again, model.head.clip.logit_scale.exp() * torch.nn.functional.normalize(
        model.head.clip.encode_image_features(model.forward_features(video).mean(1)), dim=-1)
        @ model.head.class_embeddings().T)  # fmt: skip

"""Shared fixtures. Peer models live in peers.py, video helpers in data/videos.py."""

from __future__ import annotations

import os

import pytest
import torch
from peers import SIZE

os.environ.setdefault("VIDAPTER_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """The synthetic dataset's 13 order and appearance classes (the ones `vidapter demo` trains on), 3 training clips
    per class, 32 px, 16 frames: what the end-to-end tests train on."""
    from vidapter.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("synthetic")
    make_synthetic(out, per_class={"train": 3, "val": 1, "test": 1}, size=32, frames=16, seed=1, workers=2,
                   classes=list(range(13)))  # fmt: skip
    return out


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory):
    """A tiny CLIP file as open_clip writes it (the tiny_clip row): both towers, the text tower reading the real
    tokenizer's ids (vocabulary 49408, context 77)."""
    from peers import open_clip_model

    path = tmp_path_factory.mktemp("clip") / "clip.pt"
    torch.save(open_clip_model(vocab=49408, context=77).state_dict(), path)
    return path


@pytest.fixture
def images():
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def video():
    """(B, 3, T, H, W) with B=2, T=4."""
    return torch.randn(2, 3, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="session")
def model_dir(data, tmp_path_factory):
    """A saved model of the synthetic preset (the demo ViT with AIM, 8 frames, 32 px) for the 13 classes of ``data``,
    untrained: what export, features and the server read."""
    from vidapter.classifier import build_model, save_pretrained
    from vidapter.presets import get_preset

    names = (data / "classes.txt").read_text().split()
    cfg = get_preset("synthetic")
    cfg.model.num_classes = len(names)
    model = build_model(cfg.model)
    with torch.no_grad():  # a head away from zero, so that the classes differ in score
        model.head.fc.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    return save_pretrained(model, cfg, tmp_path_factory.mktemp("model") / "model", names)

"""Shared steps of the released-checkpoint tests: write an official file, convert it with the CLI, load the result."""

from __future__ import annotations

from pathlib import Path

import torch

from vidapter.classifier import from_pretrained
from vidapter.cli import main


def convert_official(
    tmp_path: Path, kind: str, checkpoint: dict, preset: str, *extra: str, backbone: dict | None = None
):
    """Save ``checkpoint`` (and ``backbone``, the CLIP image tower it sits on) and run ``vidapter convert``; returns
    the converted model (eval mode) and its config."""
    ckpt = tmp_path / "official.pth"
    torch.save(checkpoint, ckpt)
    args = ["convert", kind, str(ckpt), str(tmp_path / "out"), "--preset", preset, "--model.backbone=tiny_clip", *extra]
    if backbone is not None:
        torch.save(backbone, tmp_path / "clip_visual.pt")
        args += ["--backbone", str(tmp_path / "clip_visual.pt")]
    assert main(args) == 0
    model, cfg, _ = from_pretrained(tmp_path / "out")
    return model.eval(), cfg

"""Inference on files: load a model directory or a run, classify videos (whole clip or windows along the timeline).

A run directory gives its ``model/`` directory when training finished, else its best (or last) checkpoint on top of
the pretrained backbone named in its config, whose weight digest must match the checkpoint's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vidapter.adapters.peft import backbone_digest, trainable_state_dict
from vidapter.checkpoint import CheckpointError, load_checkpoint
from vidapter.config import Config, ConfigError, from_dict
from vidapter.data.build import clip_transform, frame_sampler
from vidapter.data.decode import VideoError, open_video
from vidapter.models.build import build_model
from vidapter.models.pretrained import check_keys, from_pretrained

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}


def load_model(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[torch.nn.Module, Config, list[str] | None]:
    """A model directory (config.json + model.safetensors), a run directory, or a training checkpoint file.

    Checkpoints and the backbone weights they name are read with PyTorch's restricted loader, which runs no code;
    ``trust_pickle`` reads them with full pickle (only for files from a source you trust)."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return from_pretrained(path)
    if (path / "model" / "model.safetensors").exists():
        return from_pretrained(path / "model")
    ckpt = path if path.is_file() else next((path / n for n in ("best.pt", "last.pt") if (path / n).exists()), None)
    if ckpt is None:
        if not path.exists():
            raise CheckpointError(f"{path}: no such file or directory")
        raise CheckpointError(f"{path}: no model directory, model/ folder, best.pt or last.pt")
    state = load_checkpoint(ckpt, trust_pickle)
    try:
        cfg = from_dict(state["config"])
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt}: its config is not valid ({e})") from e
    model = build_model(cfg.model, trust_pickle=trust_pickle)
    if backbone_digest(model) != state["backbone"].get("sha256"):
        raise CheckpointError(
            f"{ckpt}: the backbone loaded from {cfg.model.pretrained!r} is not the one it was trained on"
        )
    check_keys(state["model"], trainable_state_dict(model), f"{ckpt} does not fit its config")
    model.load_state_dict(state["model"], strict=False)
    names_file = ckpt.parent / "classes.txt"
    names = names_file.read_text().splitlines() if names_file.exists() else None
    return model, cfg, names


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders expanded to the video files inside (recursively, sorted)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            out.append(p)
    return out


@torch.no_grad()
def predict_file(
    model: torch.nn.Module,
    cfg: Config,
    path: str | os.PathLike,
    *,
    names: list[str] | None = None,
    top_k: int = 5,
    window: float | None = None,
    device: torch.device | str = "cpu",
    amp: torch.dtype | None = None,
) -> dict:
    """Top-k classes for ``path`` under the test view protocol; with ``window`` (seconds) one result per window;
    ``amp``: autocast dtype (None: the model's own precision).

    Raises VideoError when the file cannot be read."""
    model.eval()
    device = torch.device(device)
    facts = model.backbone.facts
    transform = clip_transform(cfg.data, "test", facts.mean, facts.std)
    sampler = frame_sampler(cfg.data, cfg.model.num_frames, "test")
    with open_video(path, cfg.data.backend) as video:
        n, fps = video.num_frames, getattr(video, "fps", 0.0) or 0.0
        if window is None:
            spans = [(0, n)]
        else:
            if not fps:
                raise VideoError(path, "frame rate unknown: windows in seconds are not possible")
            size = max(1, round(window * fps))
            spans = [(s, min(s + size, n)) for s in range(0, n, size)]
        results = []
        for first, last in spans:
            idx = sampler(last - first, train=False) + first
            arr = video.get(idx.reshape(-1).tolist())
            frames = torch.from_numpy(arr).view(*idx.shape, *arr.shape[1:])  # (clips, T, H, W, 3)
            views = torch.cat([transform(c) for c in frames]).to(device)  # (V, C, T, H, W)
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = model(views)
            probs = logits.float().softmax(-1).mean(0).cpu().numpy()
            top = np.argsort(-probs)[:top_k]
            entry = {"top": [{"label": int(i), "name": names[i] if names else str(i), "prob": float(probs[i])}
                             for i in top]}  # fmt: skip
            if window is not None:
                entry.update(start_s=first / fps, end_s=last / fps)
            results.append(entry)
    out = {"file": str(path), "frames": n}
    if window is None:
        out.update(results[0])
    else:
        out["windows"] = results
    return out

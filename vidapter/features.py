"""Clip features for downstream models: one ``.npy`` per video, a row per sliding window, in the layout temporal
action detection code reads (ActionFormer, OpenTAD: ``<video name>.npy``, float32, windows x D), and
``features.json`` beside them saying what each row is.

A window is ``window`` consecutive source frames, and windows start every ``stride`` frames (the last one may be
shorter; a video shorter than a window gives one). The model sees the T frames at the centres of T equal segments of
the window (TSN's test sampling; with ``window = T x interval`` that is dense sampling at that interval), resized and
centre-cropped as at test time, one view. ``feature`` is what a row holds:

- ``video``: the video embedding the model's head reads (D), the default;
- ``frames``: every frame's feature after the final norm, rows of (T, D) (the array is windows x T x D);
- ``block:N``: the tokens after backbone block N (0-based), averaged over the window's frames and tokens (D).

Videos are decoded in worker processes (``workers``) while the model runs. A video whose ``.npy`` exists is skipped,
so an interrupted run resumes where it stopped (with the same settings: ``features.json`` of another model, feature,
window or stride refuses the folder). An unreadable video is listed in ``features.json`` under ``unreadable`` and
left out; the others are written.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidapter.data.build import clip_transform
from vidapter.errors import ConfigError
from vidapter.files import write_atomic, write_text

FEATURES_VERSION = 1
CHUNK = 16  # windows decoded and embedded together


@dataclasses.dataclass
class Probe:
    path: Path
    name: str
    frames: int = 0
    fps: float = 0.0
    error: str | None = None


def window_spans(frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) of each window: starts every ``stride`` frames while a whole window fits, then one more if
    frames remain uncovered; a video shorter than a window gives one window over all its frames."""
    if frames <= window:
        return [(0, frames)]
    spans = [(s, s + window) for s in range(0, frames - window + 1, stride)]
    if spans[-1][1] < frames:
        spans.append((spans[-1][0] + stride, frames))
    return spans


def window_frames(start: int, end: int, num_frames: int) -> np.ndarray:
    """The T frame indices the model sees in a window: the centres of T equal segments (repeats when shorter)."""
    seg = (end - start) / num_frames
    return np.minimum(start + (np.arange(num_frames) * seg + seg / 2).astype(np.int64), end - 1)


def parse_feature(feature: str) -> tuple[str, int | None]:
    if feature in ("video", "frames"):
        return feature, None
    kind, _, n = feature.partition(":")
    if kind == "block" and n.isdigit():
        return "block", int(n)
    raise ConfigError(f"--feature {feature!r}: expected video, frames or block:N (N a backbone block, 0-based)")


class _Chunks(Dataset):
    """Items: (video number, first window, the windows' clips (W, 3, T, H, W) normalised)."""

    def __init__(self, probes: list[Probe], items: list[tuple[int, int, list[tuple[int, int]]]], cfg, mean, std,
                 num_frames: int):  # fmt: skip
        self.probes, self.items, self.cfg, self.num_frames = probes, items, cfg, num_frames
        self.transform = clip_transform(dataclasses.replace(cfg.data, test_crops=1), "test", mean, std)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        from vidapter.data.decode import VideoError, open_video

        v, first, spans = self.items[i]
        idx = np.stack([window_frames(s, e, self.num_frames) for s, e in spans])
        try:
            with open_video(self.probes[v].path, self.cfg.data.backend) as video:
                wanted = sorted(set(idx.reshape(-1).tolist()))
                arr = video.get(wanted)
        except VideoError as e:
            return v, first, None, str(e)
        pos = {f: j for j, f in enumerate(wanted)}
        frames = torch.from_numpy(arr[[pos[f] for f in idx.reshape(-1)]]).view(*idx.shape, *arr.shape[1:])
        return v, first, torch.cat([self.transform(c) for c in frames]), None


def _names(paths: list[Path], how: str) -> list[str]:
    if how == "stem":
        return [p.stem for p in paths]
    if how != "path":
        raise ConfigError(f"name {how!r}: expected stem or path")
    absolute = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in absolute])) if paths else Path()
    return ["__".join(p.relative_to(root).with_suffix("").parts) for p in absolute]


def _probe(path: Path, backend: str, name: str) -> Probe:
    from vidapter.data.decode import VideoError, open_video

    try:
        with open_video(path, backend) as video:
            return Probe(path, name, video.num_frames, float(getattr(video, "fps", 0.0) or 0.0))
    except VideoError as e:
        return Probe(path, name, error=str(e))


def extract_features(model, cfg, videos: Sequence[str | os.PathLike], out: str | os.PathLike, *, window: int,
                     stride: int, feature: str = "video", workers: int = 2, batch_size: int = CHUNK,
                     device: torch.device | str = "cpu", model_name: str = "", progress: bool = True,
                     name: str = "stem") -> dict:  # fmt: skip
    """Write ``<out>/<video name>.npy`` for every readable video and ``<out>/features.json``; returns the latter's
    content. ``window`` and ``stride`` are in source frames. ``name``: ``stem`` names an array after its video's file
    name without extension (ActionFormer's video ids), ``path`` after its path below the videos' common folder,
    separators as ``__`` (for datasets whose file names repeat across class folders)."""
    from tqdm import tqdm

    kind, block = parse_feature(feature)
    if kind == "frames" and getattr(model, "decoder", None) is not None:
        raise ConfigError("--feature frames: this model reads out through a decoder (EVL); use video or block:N")
    if window < 1 or stride < 1:
        raise ConfigError(f"--window {window} --stride {stride}: both must be at least 1 frame")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(v) for v in videos]
    names = _names(paths, name)
    seen: dict[str, Path] = {}
    for p, n in zip(paths, names, strict=True):  # one array per name: two videos of one name would overwrite
        if n in seen:
            raise ConfigError(f"{p} and {seen[n]} have the same name {n!r}: their arrays would collide in {out} "
                              "(--name path names them by their folders too)")  # fmt: skip
        seen[n] = p
    settings = {"model": model_name, "feature": feature, "name": name, "window_frames": window, "stride_frames": stride,
                "num_frames": cfg.model.num_frames, "size": cfg.data.size}  # fmt: skip
    index = out / "features.json"
    if index.exists():
        try:
            old = json.loads(index.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{index}: not readable JSON ({e}); remove it to start over") from e
        if old.get("version", 1) > FEATURES_VERSION:
            raise ConfigError(f"{index}: written by a newer vidapter (version {old['version']}): upgrade vidapter")
        differs = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if differs:
            said = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in differs.items())
            raise ConfigError(f"{index}: these features were made with {said}: use another --out, or remove it")
    write_text(index, json.dumps({"format": "vidapter-features", "version": FEATURES_VERSION, **settings,
                                  "complete": False}, indent=2) + "\n")  # fmt: skip

    probes = [_probe(p, cfg.data.backend, n) for p, n in zip(paths, names, strict=True)]
    todo = [i for i, pr in enumerate(probes) if pr.error is None and pr.frames > 0 and not _done(out, pr)]
    items = []
    for v in todo:
        spans = window_spans(probes[v].frames, window, stride)
        items += [(v, j, spans[j : j + batch_size]) for j in range(0, len(spans), batch_size)]
    facts = model.backbone.facts  # data.mean/std, where set, take precedence inside the transform
    data = _Chunks(probes, items, cfg, facts.mean, facts.std, cfg.model.num_frames)
    loader = DataLoader(data, batch_size=None, num_workers=workers, shuffle=False)
    device = torch.device(device)
    model.eval()
    parts: dict[int, list[np.ndarray]] = {}
    shape = None
    failed: dict[int, str] = {}
    remaining = {v: sum(1 for it in items if it[0] == v) for v in todo}
    bar = tqdm(total=len(todo), unit="video", disable=not progress, desc="features")
    for v, _, clips, error in loader:
        if error is not None:
            failed[v] = error
        elif v not in failed:
            with torch.no_grad():
                parts.setdefault(v, []).append(_rows(model, clips.to(device), kind, block).float().cpu().numpy())
        remaining[v] -= 1
        if remaining[v] == 0:
            if v not in failed:
                arr = np.concatenate(parts.pop(v)).astype(np.float32)
                shape = ["windows", *arr.shape[1:]]
                write_atomic(out / f"{probes[v].name}.npy", lambda f, a=arr: np.save(f, a))
            parts.pop(v, None)
            bar.update(1)
    bar.close()
    for v, error in failed.items():
        probes[v].error = error
    result = {
        "format": "vidapter-features",
        "version": FEATURES_VERSION,
        **settings,
        "complete": True,
        "row_shape": shape,  # of the arrays written by this call (None: none written)
        "sampling": "each window's T frames: the centres of T equal segments; one centre-cropped view",
        "videos": {pr.name: _entry(pr, window, stride, cfg.model.num_frames) for pr in probes
                   if pr.error is None and pr.frames > 0},
        "unreadable": [{"path": str(pr.path), "reason": pr.error or "no frames"} for pr in probes
                       if pr.error is not None or pr.frames == 0],
    }  # fmt: skip
    write_text(index, json.dumps(result, indent=2) + "\n")
    return result


def _done(out: Path, probe: Probe) -> bool:
    return (out / f"{probe.name}.npy").exists()


def _rows(model, clips: torch.Tensor, kind: str, block: int | None) -> torch.Tensor:
    if kind == "video":
        return model.embed(clips)
    if kind == "frames":
        return model.forward_features(clips)
    return model.block_output(clips, block).mean(dim=(1, 2))


def _entry(probe: Probe, window: int, stride: int, num_frames: int) -> dict:
    spans = window_spans(probe.frames, window, stride)
    fps = probe.fps or None
    return {
        "path": str(probe.path),
        "frames": probe.frames,
        "fps": fps,
        "windows": len(spans),
        "window_s": window / fps if fps else None,
        "stride_s": stride / fps if fps else None,
        "spans": [[s, e] for s, e in spans],  # [start, end) source frames of each row
    }

"""The Kinetics-like videos the data benchmarks read, and one timed pass of a reader over them.

10 s, 25 fps, 340x256 H.264 (libx264 veryfast): Gaussian blobs bouncing over a panning, slowly shifting textured
gradient, plus sensor noise, so that the encoder sees motion, texture and noise as in real footage. The same seeds
give the same videos in every script (readers.py, storage_layouts.py, loader_stages.py, loader_throughput.py,
cpu_scaling.py, decode_resize.py), so their figures are about the same content."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from vidapter.data.decode import read_all_naive
from vidapter.data.sampling import dense, uniform
from vidapter.data.synthetic import write_mp4

W, H, FPS, SECONDS = 340, 256, 25, 10
PATTERNS = {  # name: (sampler, train): K400 training, SSv2 training, the 3-clip test
    "dense8x16_train": (dense(8, 16, 1), True),
    "uniform8_train": (uniform(8), True),
    "dense8x16_test3": (dense(8, 16, 3), False),
}


def render(seed: int, height: int = H, width: int = W, frames: int = FPS * SECONDS) -> np.ndarray:
    """(frames, height, width, 3) uint8: Gaussian blobs bouncing over a panning, slowly shifting textured gradient
    + noise. Sizes scale with the frame (the defaults are the 340x256 videos of the tables)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    k, zoom = 6, height / H
    pos, vel = rng.uniform(0, 1, (k, 2)) * [width, height], rng.uniform(-4, 4, (k, 2)) * zoom
    radius, colour = rng.uniform(12, 50, k) * zoom, rng.uniform(-120, 120, (k, 3))
    texture = rng.normal(0, 16, (height, width + frames, 3)).astype(np.float32)  # pans 1 px per frame
    tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(len(out)):
        s = f / FPS
        img = 110 + 60 * np.sin(2 * np.pi * (xx / width + 0.1 * s))[..., None] * tint
        img = img + 30 * np.cos(np.pi * (yy / height + 0.07 * s))[..., None] + texture[:, f : f + width]
        p = pos + vel * f
        p = np.abs((p + [width, height]) % (2 * np.array([width, height])) - [width, height])  # bounce off borders
        for (cx, cy), r, c in zip(p, radius, colour, strict=True):
            y0, x0 = int(max(cy - 3 * r, 0)), int(max(cx - 3 * r, 0))
            win = np.s_[y0 : int(cy + 3 * r) + 1, x0 : int(cx + 3 * r) + 1]  # numpy clips at the far borders
            img[win] += np.exp(-((xx[win] - cx) ** 2 + (yy[win] - cy) ** 2) / (2 * r * r))[..., None] * c
        img += rng.normal(0, 2.0, (height, width, 1)).astype(np.float32)  # sensor noise, the same on all channels
        out[f] = np.clip(img, 0, 255)
    return out


def make_videos(root: Path, n: int, gops: list[int], crf: int) -> dict[int, list[Path]]:
    """``n`` videos per GOP length under ``root`` (``gop{g}_crf{crf}/{i:03d}.mp4``; files already there are kept):
    {gop: paths}. Video i has the same frames at every GOP."""
    files = {g: [root / f"gop{g}_crf{crf}" / f"{i:03d}.mp4" for i in range(n)] for g in gops}
    for i in range(n):
        if all(files[g][i].exists() for g in gops):
            continue
        frames = render(1000 + i)
        for g in gops:
            files[g][i].parent.mkdir(parents=True, exist_ok=True)
            write_mp4(files[g][i], frames, fps=FPS, crf=crf, gop=g)
    return files


def timed_pass(files: list, sampler, train: bool, tf, seed: int, opener) -> dict:
    """Sample and decode each file (``opener(i, path)`` -> an opened reader, or None: decode every frame and index),
    apply ``tf`` to every clip; clips per CPU-second (``time.process_time``: every thread of the process) and per
    wall second. The sampling rng is seeded per video, so every reader reads the same frames."""
    torch.manual_seed(seed)
    clips, c0, w0 = 0, time.process_time(), time.perf_counter()
    for i, path in enumerate(files):
        rng = np.random.default_rng([seed, i])
        reader = opener(i, path)
        if reader is None:
            every = read_all_naive(path)
            idx = sampler(len(every), train, rng)
            frames = every[idx.ravel()]
        else:
            with reader as v:
                idx = sampler(v.num_frames, train, rng)
                frames = v.get(idx.ravel().tolist())
        for clip in frames.reshape(*idx.shape, *frames.shape[1:]):
            if tf is not None:
                tf(torch.from_numpy(clip))
            clips += 1
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return dict(clips=clips, cpu_s=cpu, wall_s=wall, clips_per_cpu_s=clips / cpu, clips_per_wall_s=clips / wall)

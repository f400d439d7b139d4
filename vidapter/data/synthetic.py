"""Synthetic action videos that need time to be understood: real H.264 mp4 files plus list files, seedable.

Order classes come in pairs that are exact time reversals of each other (the reversed class is the forward clip played
backwards), so a model that pools frames without temporal modelling cannot tell a pair apart; appearance classes are
decided by any single frame. Documented in docs/synthetic.md.

| label | class | pair |
| --- | --- | --- |
| 0 / 1 | move_right / move_left | an object crosses the frame horizontally |
| 2 / 3 | move_down / move_up | an object crosses the frame vertically |
| 4 / 5 | grow / shrink | an object's size changes 4x |
| 6 / 7 | appear / vanish | an object fades in / out over a still background |
| 8 / 9 | rotate_cw / rotate_ccw | a clock hand turns a quarter turn |
| 10 | stripes | drifting stripes, no object (appearance) |
| 11 | checkerboard | flickering checkerboard, no object (appearance) |
| 12 | rings | pulsing concentric rings, no object (appearance) |
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vidapter.files import write_text

CLASSES = [
    "move_right",
    "move_left",
    "move_down",
    "move_up",
    "grow",
    "shrink",
    "appear",
    "vanish",
    "rotate_cw",
    "rotate_ccw",
    "stripes",
    "checkerboard",
    "rings",
]
ORDER_PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
APPEARANCE = [10, 11, 12]
SHAPES = ("square", "disc", "triangle")


def object_mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean (size, size) mask of a square, disc or triangle of half-size ``r`` centred at (cx, cy)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "disc":
        return dx**2 + dy**2 <= r**2
    return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)  # triangle pointing up


def hand_image(size: int, angle: float, rng_colour: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """A clock hand from the centre at ``angle`` radians (0 = up, clockwise) drawn over ``bg``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c = size / 2
    ux, uy = np.sin(angle), -np.cos(angle)  # angle 0 points up, clockwise positive (image y grows downwards)
    t = (xx - c) * ux + (yy - c) * uy
    d = np.abs((xx - c) * uy - (yy - c) * ux)
    hand = (t >= 0) & (t <= 0.42 * size) & (d <= 0.06 * size)
    tip = (xx - c - 0.42 * size * ux) ** 2 + (yy - c - 0.42 * size * uy) ** 2 <= (0.1 * size) ** 2
    img = bg.copy()
    img[hand | tip] = rng_colour
    return img


def texture_mask(label: int, size: int, phase: float, period: float, s: float, f: int) -> np.ndarray:
    """The "on" pixels of appearance class ``label`` (10 stripes, 11 checkerboard, 12 rings) at time s (frame f)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if label == 10:
        return np.sin(2 * np.pi * (xx / period + phase + 0.5 * s)) > 0
    if label == 11:
        return ((xx // period + yy // period) % 2 == 0) ^ (f % 4 < 2)
    rad = np.hypot(xx - size / 2, yy - size / 2)
    return np.sin(2 * np.pi * (rad / period - phase - s)) > 0


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark random colour with per-pixel noise, (size, size, 3) uint8."""
    return np.clip(rng.integers(0, 70, 3) + rng.integers(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)


def render_clip(label: int, rng: np.random.Generator, size: int = 64, frames: int = 16) -> np.ndarray:
    """(frames, size, size, 3) uint8 for one clip of class ``label``."""
    bg = background(rng, size)
    colour = rng.integers(150, 256, 3).astype(np.uint8)
    shape = SHAPES[rng.integers(len(SHAPES))]
    t = np.linspace(0.0, 1.0, frames)
    forward = label % 2 == 0 if label < 10 else True
    pair = label // 2 if label < 10 else None
    clip = np.empty((frames, size, size, 3), np.uint8)
    if pair in (0, 1):
        r = size * rng.uniform(0.1, 0.16)
        a, b = rng.uniform(0.2, 0.8) * size, rng.uniform(0.15, 0.25)
        for f, s in enumerate(t):
            p = (b + (1 - 2 * b) * s) * size
            cx, cy = (p, a) if pair == 0 else (a, p)
            clip[f] = bg
            clip[f][object_mask(shape, size, cx, cy, r)] = colour
    elif pair == 2:
        cx, cy = rng.uniform(0.4, 0.6, 2) * size
        for f, s in enumerate(t):
            clip[f] = bg
            clip[f][object_mask(shape, size, cx, cy, size * (0.08 + 0.24 * s))] = colour
    elif pair == 3:
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        m = object_mask(shape, size, cx, cy, size * rng.uniform(0.15, 0.22))
        for f, s in enumerate(t):
            clip[f] = bg
            clip[f][m] = (s * colour + (1 - s) * bg[m]).astype(np.uint8)
    elif pair == 4:
        start = rng.uniform(0, 2 * np.pi)
        for f, s in enumerate(t):
            clip[f] = hand_image(size, start + s * np.pi / 2, colour, bg)
    else:
        phase, period = rng.uniform(0, 1), rng.uniform(6, 12) * size / 64
        for f, s in enumerate(t):
            clip[f] = bg
            clip[f][texture_mask(label, size, phase, period, s, f)] = colour
    return clip if forward else clip[::-1].copy()


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 18, gop: int = 8) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p) in an mp4 container with PyAV."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "g": str(gop), "preset": "veryfast"}
        stream.thread_count = 1
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        out.mux(stream.encode())


def _write_one(job: tuple) -> str:
    out_dir, rel, label, seed, size, frames = job
    rng = np.random.default_rng(seed)
    write_mp4(Path(out_dir) / rel, render_clip(label, rng, size, frames))
    return rel


def make_synthetic(
    out_dir: str | os.PathLike,
    *,
    per_class: dict[str, int] | None = None,
    size: int = 64,
    frames: int = 16,
    seed: int = 0,
    classes: list[int] | None = None,
    workers: int | None = None,
) -> dict[str, Path]:
    """Write ``{split}/{class}/{i:05d}.mp4`` and ``{split}.txt`` lists (``path label``) plus ``classes.txt``.

    Every clip's content is a function of (seed, split, class, i), so the same arguments give the same files.
    Returns the list file of each split.
    """
    if size % 2:
        raise ValueError(f"size must be even for H.264 4:2:0, got {size}")
    per_class = per_class or {"train": 100, "val": 20, "test": 20}
    labels = classes if classes is not None else list(range(len(CLASSES)))
    out = Path(out_dir)
    jobs, lists = [], {}
    for split_id, (split, n) in enumerate(per_class.items()):
        lines = []
        for k, label in enumerate(labels):
            (out / split / CLASSES[label]).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rel = f"{split}/{CLASSES[label]}/{i:05d}.mp4"
                jobs.append((str(out), rel, label, [seed, split_id, label, i], size, frames))
                lines.append(f"{rel} {k}")
        lists[split] = lines
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        list(pool.map(_write_one, jobs, chunksize=16))
    paths = {}
    for split, lines in lists.items():
        paths[split] = out / f"{split}.txt"
        write_text(paths[split], "\n".join(lines) + "\n")
    write_text(out / "classes.txt", "\n".join(CLASSES[i] for i in labels) + "\n")
    return paths

"""Synthetic action videos that need time to be understood: real H.264 mp4 files plus list files, seedable.

Order classes come in pairs that are exact time reversals of each other (the reversed class is the forward clip played
backwards), so a model that pools frames without temporal modelling cannot tell a pair apart; appearance classes are
decided by any single frame. Relation classes come in families whose members differ only in a relation between frames
with random content (the colour comes back or not, the object comes back or not, the same object reappears or another
one): every frame, at every time index, has the same distribution in every member of a family, so no model that
scores frames independently and adds the scores, temporal embedding included, can beat chance there. Documented in
docs/synthetic.md.

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
| 13 / 14 | colour_returns / colour_changes | a still object turns colour a, b, then a again / a third colour c |
| 15 / 16 | comes_back / moves_on | an object moves from P0 to P1, then back to P0 / on to P2 |
| 17 / 18 | same_object / other_object | an object vanishes; after a gap the same / another object appears there |
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vidapter.errors import ConfigError
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
    "colour_returns",
    "colour_changes",
    "comes_back",
    "moves_on",
    "same_object",
    "other_object",
]
ORDER_PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
APPEARANCE = [10, 11, 12]
RELATION_FAMILIES = [(13, 14), (15, 16), (17, 18)]
VERSION = 2  # changes whenever a class's pixels change (a cached dataset with another version is rewritten)
SHAPES = ("square", "disc", "triangle")
# Relation colours: far apart in RGB, so that "the same colour" and "another colour" are unambiguous after H.264
PALETTE = np.array([(235, 45, 45), (45, 205, 65), (70, 100, 255)], np.uint8)


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


def _far_points(rng: np.random.Generator, size: int, n: int, gap: float) -> np.ndarray:
    """``n`` points uniform in the central 60 % of the frame, pairwise at least ``gap * size`` apart (rejection
    sampling: the joint law is exchangeable, so any two of them are interchangeable)."""
    while True:
        p = rng.uniform(0.2, 0.8, (n, 2)) * size
        d = np.hypot(*(p[:, None] - p[None]).transpose(2, 0, 1))
        if (d[np.triu_indices(n, 1)] >= gap * size).all():
            return p


def render_relation(label: int, rng: np.random.Generator, size: int, frames: int, bg: np.ndarray) -> np.ndarray:
    """A clip of relation class ``label`` (13-18). Within a family both classes draw the same random quantities in
    the same order and differ only in which of two exchangeable draws the last phase shows, so each frame, with its
    time index, has the same distribution in both classes."""
    s = np.linspace(0.0, 1.0, frames)
    first = label % 2 == 1  # the first member of each family: 13, 15, 17
    shape = SHAPES[rng.integers(len(SHAPES))]
    clip = np.repeat(bg[None], frames, axis=0)
    if label in (13, 14):
        # colours a, b, c: three distinct palette colours in random order; the last phase shows a or c, which are
        # exchangeable given b, so its colour is uniform over the palette minus b in both classes
        a, b, c = rng.permutation(len(PALETTE))[:3]
        t1, t2 = rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.75)
        cx, cy = rng.uniform(0.35, 0.65, 2) * size
        m = object_mask(shape, size, cx, cy, size * rng.uniform(0.2, 0.3))
        for f, sf in enumerate(s):
            clip[f][m] = PALETTE[a if sf < t1 else b if sf < t2 else (a if first else c)]
    elif label in (15, 16):
        # P1, then P0 and P2 drawn together (exchangeable, all far apart): the object goes P0 -> P1 -> P0 or P2
        colour = rng.integers(150, 256, 3).astype(np.uint8)
        r = size * rng.uniform(0.1, 0.14)
        p1, p0, p2 = _far_points(rng, size, 3, 0.3)
        turn = rng.uniform(0.4, 0.6)
        end = p0 if first else p2
        for f, sf in enumerate(s):
            u = sf / turn if sf < turn else (sf - turn) / (1 - turn)
            cx, cy = p0 + (p1 - p0) * u if sf < turn else p1 + (end - p1) * u
            clip[f][object_mask(shape, size, cx, cy, r)] = colour
    else:
        # an object (shape, palette colour) vanishes, and after a gap the same object or one of another shape and
        # another colour appears in its place: (shape, colour) of the second is uniform over all pairs in both classes
        k1 = rng.integers(len(PALETTE))
        s1 = SHAPES.index(shape)
        s2 = (s1 + 1 + rng.integers(len(SHAPES) - 1)) % len(SHAPES)
        k2 = (k1 + 1 + rng.integers(len(PALETTE) - 1)) % len(PALETTE)
        cx, cy = rng.uniform(0.35, 0.65, 2) * size
        r = size * rng.uniform(0.2, 0.28)
        t1 = rng.uniform(0.3, 0.4)
        t2 = t1 + rng.uniform(0.2, 0.3)
        m1 = object_mask(shape, size, cx, cy, r)
        m2, colour2 = (m1, PALETTE[k1]) if first else (object_mask(SHAPES[s2], size, cx, cy, r), PALETTE[k2])
        for f, sf in enumerate(s):
            if sf < t1:
                clip[f][m1] = PALETTE[k1]
            elif sf >= t2:
                clip[f][m2] = colour2
    return clip


def render_clip(label: int, rng: np.random.Generator, size: int = 64, frames: int = 16) -> np.ndarray:
    """(frames, size, size, 3) uint8 for one clip of class ``label``."""
    bg = background(rng, size)
    if label >= 13:
        return render_relation(label, rng, size, frames, bg)
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


def write_audio_only(path: str | os.PathLike) -> None:
    """An mp4 with one silent AAC stream and no video stream (a file a video reader must refuse)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), "float32"), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


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
        raise ConfigError(f"size must be even for H.264 4:2:0, got {size}")
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

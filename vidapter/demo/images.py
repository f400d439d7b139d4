"""Synthetic *images* of the object family of the synthetic videos, with the attributes as targets.

A still image says where an object is, how big, how opaque, which shape, which colour, where a clock hand points, or
which texture fills the frame: everything a video model needs per frame to tell motion direction, growth, fading or
rotation, or whether a colour, a place or an object comes back, by comparing frames. Targets are classification bins;
-1 means "not applicable" (e.g. shape of a texture image, hue of a pale colour).
"""

from __future__ import annotations

import colorsys

import numpy as np

from vidapter.data.synthetic import SHAPES, background, hand_image, object_mask, texture_mask

KINDS = ("object", "hand", "stripes", "checkerboard", "rings")
TASKS = {"kind": 5, "shape": 3, "x": 4, "y": 4, "size": 4, "alpha": 4, "angle": 8, "hue": 6}


def _bin(value: float, lo: float, hi: float, n: int) -> int:
    return int(np.clip((value - lo) / (hi - lo) * n, 0, n - 1))


def render_image(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, dict[str, int]]:
    """One (size, size, 3) uint8 image and its targets."""
    bg = background(rng, size)
    kind = int(rng.integers(len(KINDS)))
    t = dict.fromkeys(TASKS, -1)
    t["kind"] = kind
    if rng.uniform() < 0.5:  # the order classes' pale random colours, no hue target
        colour = rng.integers(150, 256, 3).astype(np.uint8)
    else:  # a saturated colour (the relation classes' palette lies in bins 0, 2, 4); hue bins centred on 0, 1/6, ...
        hue = rng.uniform(0, 1)
        rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 0.9), rng.uniform(0.8, 1.0))
        colour = np.round(255 * np.array(rgb)).astype(np.uint8)
        t["hue"] = int(np.round(hue * 6)) % 6
    if kind == 0:
        shape = int(rng.integers(len(SHAPES)))
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        r = rng.uniform(0.08, 0.35) * size
        alpha = rng.uniform(0, 1)
        img = bg.copy()
        m = object_mask(SHAPES[shape], size, cx, cy, r)
        img[m] = (alpha * colour + (1 - alpha) * bg[m]).astype(np.uint8)
        t.update(shape=shape, x=_bin(cx, 0, size, 4), y=_bin(cy, 0, size, 4), size=_bin(r, 0.08 * size, 0.35 * size, 4),
                 alpha=_bin(alpha, 0, 1, 4))  # fmt: skip
        return img, t
    if kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        t["angle"] = _bin(angle, 0, 2 * np.pi, 8)
        return hand_image(size, angle, colour, bg), t
    img = bg.copy()
    label = 10 + kind - 2
    img[texture_mask(label, size, rng.uniform(0, 1), rng.uniform(6, 12) * size / 64, rng.uniform(0, 1),
                     int(rng.integers(16)))] = colour  # fmt: skip
    return img, t


def make_images(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 images and (n, len(TASKS)) int64 targets in TASKS order."""
    rng = np.random.default_rng(seed)
    imgs = np.empty((n, size, size, 3), np.uint8)
    targets = np.empty((n, len(TASKS)), np.int64)
    for i in range(n):
        imgs[i], t = render_image(rng, size)
        targets[i] = [t[k] for k in TASKS]
    return imgs, targets


HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")
_X, _Y = ("far left", "left", "right", "far right"), ("top", "upper", "lower", "bottom")
_SIZE, _ALPHA = ("tiny", "small", "big", "huge"), ("faint", "pale", "clear", "solid")
_ANGLE = ("right", "lower right", "down", "lower left", "left", "upper left", "up", "upper right")
TEXTURE_WORDS = ("stripes", "a checkerboard", "rings")


def caption(t: dict[str, int], rng: np.random.Generator) -> str:
    """A caption of an image from its targets, its attributes in a random order: "a small solid red disc at the
    upper left", "a blue clock hand pointing down", "green rings"."""
    colour = HUES[t["hue"]] + " " if t["hue"] >= 0 else ""
    if t["kind"] == 0:
        words = [_SIZE[t["size"]], _ALPHA[t["alpha"]]]
        rng.shuffle(words)
        return f"a {' '.join(words)} {colour}{SHAPES[t['shape']]} at the {_Y[t['y']]} {_X[t['x']]}"
    if t["kind"] == 1:
        return f"a {colour}clock hand pointing {_ANGLE[t['angle']]}"
    return f"{colour}{TEXTURE_WORDS[t['kind'] - 2]}"


def captions(targets: np.ndarray, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [caption(dict(zip(TASKS, row.tolist(), strict=True)), rng) for row in targets]

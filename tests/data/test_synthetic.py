"""The synthetic relation classes: every frame, at its time index, has the same distribution in both members of a
family (what keeps any per-frame additive model at chance), while the relation itself holds exactly."""

from __future__ import annotations

import numpy as np
import pytest

from vidapter.data.synthetic import CLASSES, PALETTE, RELATION_FAMILIES, render_clip

N, SIZE, FRAMES = 300, 32, 16


def frame_features(clip: np.ndarray) -> np.ndarray:
    """(T, 6) per frame: object area, centroid x and y, mean R, G, B of the object (the background is dark: every
    channel < 90; objects have a channel >= 150)."""
    fg = clip.max(-1) > 120
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    out = np.zeros((len(clip), 6))
    for t, (img, m) in enumerate(zip(clip, fg, strict=True)):
        if m.any():
            out[t] = [m.sum(), xx[m].mean(), yy[m].mean(), *img[m].mean(0)]
    return out


def clips(label: int) -> list[np.ndarray]:
    return [render_clip(label, np.random.default_rng([7, i]), SIZE, FRAMES) for i in range(N)]


def largest_z(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest two-sample z-score of a per-frame feature mean between two sets of clips, over times and
    features."""
    fa, fb = np.stack([frame_features(c) for c in a]), np.stack([frame_features(c) for c in b])
    se = np.sqrt(fa.var(0) / len(fa) + fb.var(0) / len(fb)) + 1e-9
    return float((np.abs(fa.mean(0) - fb.mean(0)) / se).max())


@pytest.fixture(scope="module")
def rendered():
    labels = sorted({c for f in RELATION_FAMILIES for c in f} | {0, 1})
    return {label: clips(label) for label in labels}


@pytest.mark.parametrize("family", RELATION_FAMILIES, ids=lambda f: "/".join(CLASSES[c] for c in f))
def test_relation_frames_carry_no_class_information(rendered, family):
    a, b = family
    # 16 times x 6 features: |z| stays where sampling noise puts it ...
    assert largest_z(rendered[a], rendered[b]) < 4.0
    # ... while the same statistic sees an order pair at once (move_right vs move_left: centroid x at every time)
    assert largest_z(rendered[0], rendered[1]) > 50


def _same_colour(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.abs(x[3:] - y[3:]).max() < 1)


def test_relations_hold(rendered):
    for label in (13, 14):  # the last frame's colour is the first frame's, or a third colour
        feats = [frame_features(c) for c in rendered[label]]
        same = [_same_colour(f[0], f[-1]) for f in feats]
        middle = [_same_colour(f[0], f[FRAMES // 2]) for f in feats]
        assert all(same) if label == 13 else not any(same)
        assert not any(middle)
    for label in (15, 16):  # back to the start (same centroid), or at least 0.3 x size away from it
        gap = [np.hypot(*(f[-1, 1:3] - f[0, 1:3])) for f in map(frame_features, rendered[label])]
        assert max(gap) < 1e-6 if label == 15 else min(gap) > 0.25 * SIZE
    for label in (17, 18):  # the same object (shape and colour) after the gap, or one of another shape and colour
        for clip in rendered[label][:50]:
            f = frame_features(clip)
            assert f[7, 0] == 0 and f[0, 0] > 0 and f[-1, 0] > 0  # the gap always covers times 0.4-0.5
            assert _same_colour(f[0], f[-1]) == (label == 17)
    assert {tuple(c) for c in PALETTE} >= {tuple(np.round(frame_features(c)[0, 3:])) for c in rendered[13][:20]}

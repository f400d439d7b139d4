"""vidapter's port of imgaug's RandAugment(n=4, m=7) (the AIM reference's SSv2 augmentation) against imgaug 0.4.0's
own outputs, recorded by tests/data/make_randaugment_reference.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from vidapter.data.randaugment import OPS, ImgaugRandAugment, _cutout, apply_op, crop_and_resize, magnitudes

REFERENCE = np.load(Path(__file__).parent / "assets" / "imgaug_randaugment_m7.npz")
MAGS = magnitudes(7)
SIGNED = {"rotate", "color", "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y"}


def test_magnitudes_at_m7():
    assert (MAGS["posterize"], MAGS["solarize"]) == (7, 197)
    assert MAGS["rotate"] == pytest.approx(7.0) and MAGS["enhance"] == pytest.approx(0.21)
    assert MAGS["shear"] == pytest.approx(np.rad2deg(0.07), rel=1e-6) and MAGS["translate"] == pytest.approx(0.077)


@pytest.mark.parametrize("image", ["full", "dim"])
@pytest.mark.parametrize("index, op", [(i, op) for i, op in enumerate(OPS) if op != "cutout"])
def test_each_operation_equals_imgaug(index, op, image):
    """The distinct outputs of imgaug's operation over 64 seeds (one per sign) equal ours, pixel for pixel."""
    img = REFERENCE[f"input/{image}"]
    theirs = {REFERENCE[k].tobytes() for k in REFERENCE.files if k.startswith(f"op/{index}/{image}/")}
    ours = {apply_op(img, op, s, MAGS).tobytes() for s in ((1.0, -1.0) if op in SIGNED else (1.0,))}
    assert ours == theirs


@pytest.mark.parametrize("image", ["full", "dim"])
@pytest.mark.parametrize("pos", [(0.3, 0.6), (0.02, 0.97), (0.99, 0.01)])
def test_cutout_equals_imgaug(pos, image):
    img = REFERENCE[f"input/{image}"]
    np.testing.assert_array_equal(
        _cutout(img, MAGS["cutout"], pos, 128), REFERENCE[f"cutout/{pos[0]}_{pos[1]}/{image}"]
    )


@pytest.mark.parametrize("image", ["full", "dim"])
@pytest.mark.parametrize("sides", [(0, 0, 0, 0), (1, 2, 3, 4), (7, 0, 5, 6)])
def test_crop_and_resize_within_one_level_of_imgaug(sides, image):
    """OpenCV's fixed-point bilinear (imgaug) against PyTorch's float bilinear: the same grid, so at most one level
    apart (about one value in eight here)."""
    img = REFERENCE[f"input/{image}"]
    ours = crop_and_resize(torch.from_numpy(img).permute(2, 0, 1)[None], sides)[0].permute(1, 2, 0).numpy()
    diff = np.abs(ours.astype(int) - REFERENCE[f"crop/{'_'.join(map(str, sides))}/{image}"].astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.2


def test_draws_follow_imgaugs_distribution():
    aug = ImgaugRandAugment(4, 7)
    torch.manual_seed(0)
    draws = [aug.draw(224, 224) for _ in range(4000)]
    assert abs(np.mean([d["flip"] for d in draws]) - 0.5) < 0.03
    sides = Counter(s for d in draws for s in d["sides"])
    assert sorted(sides) == list(range(8))  # round(U[0, 7)): 0 and 7 half as often as 1..6
    assert abs(sides[0] / 16000 - 1 / 14) < 0.01 and abs(sides[3] / 16000 - 1 / 7) < 0.015
    assert all(len(set(d["ops"])) == 4 for d in draws)
    uses = Counter(op for d in draws for op in d["ops"])
    assert set(uses) == set(OPS) and max(uses.values()) / min(uses.values()) < 1.25
    signs = [s for d in draws for op, s in zip(d["ops"], d["signs"], strict=True) if op in SIGNED]
    assert abs(np.mean(signs)) < 0.05


def test_one_draw_for_every_frame_of_a_clip():
    torch.manual_seed(3)
    frame = torch.from_numpy(REFERENCE["input/full"]).permute(2, 0, 1)
    clip = frame[None].repeat(5, 1, 1, 1)
    out = ImgaugRandAugment(4, 7)(clip)
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert all(torch.equal(out[0], out[t]) for t in range(5))

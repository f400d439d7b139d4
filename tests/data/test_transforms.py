"""Clip transforms: one draw per clip for every random parameter; normalisation constants; views."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidapter.data.transforms import (
    ColorJitter,
    MultiViewTransform,
    ThreeCrop,
    color_jitter,
    hsv_to_rgb_cv,
    mixup_cutmix,
    rgb_to_hsv_cv,
    train_transform,
    val_transform,
)
from vidapter.models.vit import CLIP_MEAN, CLIP_STD


def _clip(t: int = 8) -> torch.Tensor:
    """The same random image repeated over T frames: a per-frame random draw would make frames differ."""
    img = torch.randint(0, 256, (1, 60, 80, 3), dtype=torch.uint8)
    return img.expand(t, -1, -1, -1).contiguous()


@pytest.mark.parametrize("seed", range(5))
def test_every_random_parameter_is_drawn_once_per_clip(seed):
    t = train_transform(CLIP_MEAN, CLIP_STD, size=32, short_side=40, flip=0.5, randaugment=(4, 7), erasing=1.0,
                        color_jitter=(0.5, 0.5, 0.5, 0.1))  # fmt: skip
    torch.manual_seed(seed)
    out = t(_clip())
    assert out.shape == (3, 8, 32, 32)
    for f in range(1, 8):
        torch.testing.assert_close(out[:, f], out[:, 0], atol=0, rtol=0)


def test_train_transform_varies_between_clips():
    t = train_transform(CLIP_MEAN, CLIP_STD, size=32, short_side=40)
    torch.manual_seed(0)
    a, b = t(_clip()), t(_clip())
    assert not torch.equal(a, b)


def test_normalisation_uses_0_255_constants():
    frames = torch.full((2, 32, 32, 3), 200, dtype=torch.uint8)
    out = val_transform(CLIP_MEAN, CLIP_STD, size=32, short_side=32)(frames)
    expected = torch.tensor([(200 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD, strict=True)])
    torch.testing.assert_close(out[:, 0, 0, 0], expected)


def test_val_short_side_then_centre_crop():
    frames = torch.zeros(1, 40, 80, 3, dtype=torch.uint8)
    frames[:, :, 30:50] = 255  # a centred bar survives the centre crop
    out = val_transform((0, 0, 0), (1, 1, 1), size=20, short_side=20)(frames)
    assert out.shape == (3, 1, 20, 20)
    assert out[0, 0, 10, 10] > 200 and out[0, 0, 10, 0] < 50


def test_three_crop_positions_along_longer_side():
    video = torch.arange(40).view(1, 1, 1, 40).expand(1, 3, 10, 40)
    crops = ThreeCrop(10)(video)
    assert crops.shape == (3, 1, 3, 10, 10)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 15, 30]


def test_test_transform_views():
    out = MultiViewTransform(CLIP_MEAN, CLIP_STD, size=32, short_side=32, crops=3)(_clip())
    assert out.shape == (3, 3, 8, 32, 32)
    out1 = MultiViewTransform(CLIP_MEAN, CLIP_STD, size=32, short_side=32, crops=1)(_clip())
    assert out1.shape == (1, 3, 8, 32, 32)


def test_mixup_cutmix_soft_labels():
    torch.manual_seed(0)
    videos, labels = mixup_cutmix(5)(torch.randn(4, 3, 8, 16, 16), torch.tensor([0, 1, 2, 3]))
    assert videos.shape == (4, 3, 8, 16, 16) and labels.shape == (4, 5)
    torch.testing.assert_close(labels.sum(1), torch.ones(4))


def _cv_image(x: torch.Tensor):
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def test_opencv_hsv_conversions_bit_for_bit():
    """The hue jitter's colour conversions against OpenCV itself, over every RGB colour and every 8-bit HSV triple,
    laid out in rows of 4096 pixels (a multiple of OpenCV's blocks: 32 pixels with AVX2, 64 with AVX-512)."""
    a = torch.arange(256)
    rgb = torch.stack([g.flatten() for g in torch.meshgrid(a, a, a, indexing="ij")]).to(torch.uint8).view(3, 4096, 4096)
    expected = torch.from_numpy(cv2.cvtColor(_cv_image(rgb), cv2.COLOR_RGB2HSV)).permute(2, 0, 1)
    assert torch.equal(rgb_to_hsv_cv(rgb), expected)
    h, s, v = torch.meshgrid(torch.arange(180), a, a, indexing="ij")
    hsv = torch.stack([h.flatten(), s.flatten(), v.flatten()]).to(torch.uint8).view(3, 180 * 16, 4096)
    expected = torch.from_numpy(cv2.cvtColor(_cv_image(hsv), cv2.COLOR_HSV2RGB)).permute(2, 0, 1)
    ours = hsv_to_rgb_cv(hsv)
    if cv2.checkHardwareSupport(11) and cv2.checkHardwareSupport(12):  # CV_CPU_AVX2, CV_CPU_FMA3: the reference's path
        assert torch.equal(ours, expected)
    else:  # OpenCV without FMA rounds 1 - s*h twice: 1758 of 35.4M values differ, by one level
        diff = (ours.int() - expected.int()).abs()
        assert diff.max() <= 1 and (diff > 0).sum() < 5000


def _reference_jitter(frames: np.ndarray, b: float, c: float, s: float, h: float, order) -> np.ndarray:
    """MMAction2 0.x ``ColorJitter.__call__`` for one clip, transcribed with NumPy 1.x's casting made explicit (the
    reference ran NumPy 1.x: its np.float64 factors act as float32 on float32 arrays; (1 - c) * mean is float64)."""

    def grey(img):
        return 0.2989 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]

    out = []
    for img in frames:
        img = img.astype(np.float32)
        for fn in order:
            if fn == 0 and b != 1:
                img *= np.float32(b)
            if fn == 1 and c != 1:
                val = np.mean(grey(img))
                img = np.float32(c) * img + np.float32((1 - c) * np.float64(val))
            if fn == 2 and s != 1:
                img = np.float32(s) * img + np.float32(1 - s) * np.stack([grey(img)] * 3, axis=-1)
            if fn == 3 and h != 0:
                hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
                hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(h * 255)) % 180
                img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize(
    "factors, order",
    [
        ((1.3, 0.7, 1.4, 0.08), (0, 1, 2, 3)),
        ((0.6, 1.45, 0.55, -0.09), (3, 2, 1, 0)),
        ((1.0, 1.2, 1.0, 0.0), (1, 3, 0, 2)),
        ((0.8, 1.0, 1.3, -0.03), (2, 0, 3, 1)),
    ],
)
def test_color_jitter_equals_the_reference(factors, order):
    """The same factors and order through vidapter and through the reference's arithmetic (OpenCV for hue) on two
    256 x 256 frames: equal, but for the frame mean (float32 sums in another order) moving a value across an integer
    in at most 1e-4 of the values, by one level. 256, not 224: OpenCV's HSV -> RGB truncates in blocks of 64 pixels on
    an AVX-512 machine and rounds the rest of a row, so the reference itself differs between machines in the last 32
    columns of a 224-wide frame; 256 is whole blocks everywhere."""
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 32, 32, generator=g), size=256, mode="bilinear")
    frames = (smooth * 255 + torch.randint(-20, 21, (2, 3, 256, 256), generator=g)).clamp(0, 255).to(torch.uint8)
    ours = color_jitter(frames, *factors, order=order).permute(0, 2, 3, 1).numpy().astype(int)
    ref = _reference_jitter(frames.permute(0, 2, 3, 1).numpy(), *factors, order).astype(int)
    diff = np.abs(ours - ref)
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-4, ((diff > 0).sum(), diff.max())
    assert (ours != frames.permute(0, 2, 3, 1).numpy()).mean() > 0.5  # the jitter did change the clip


def test_color_jitter_draws_per_clip_in_range_with_a_fixed_order():
    """Factors from U(1 - x, 1 + x) (hue U(-x, x)) once per clip; the order is fixed for a seed, as the reference
    draws it once when building its pipeline."""
    grey = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    t = ColorJitter(0.3, 0, 0, 0)
    torch.manual_seed(0)
    ratios = [t(grey).float().div(100) for _ in range(200)]
    assert all(torch.equal(r, r.flatten()[0].expand_as(r)) for r in ratios)  # one factor for all frames and pixels
    values = torch.stack([r.flatten()[0] for r in ratios])
    assert 0.69 <= values.min() < 0.75 and 1.25 < values.max() <= 1.3
    assert ColorJitter(seed=3).order == ColorJitter(seed=3).order
    assert len({tuple(ColorJitter(seed=k).order) for k in range(20)}) > 1
    with pytest.raises(ValueError, match=r"colour jitter hue must be in \[0, 0.5\], got 0.7"):
        ColorJitter(hue=0.7)

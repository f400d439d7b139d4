"""Clip transforms: one draw per clip for every random parameter; normalisation constants; views."""

from __future__ import annotations

import pytest
import torch

from vidapter.data.transforms import MultiViewTransform, ThreeCrop, mixup_cutmix, train_transform, val_transform
from vidapter.models.vit import CLIP_MEAN, CLIP_STD


def _clip(t: int = 8) -> torch.Tensor:
    """The same random image repeated over T frames: a per-frame random draw would make frames differ."""
    img = torch.randint(0, 256, (1, 60, 80, 3), dtype=torch.uint8)
    return img.expand(t, -1, -1, -1).contiguous()


@pytest.mark.parametrize("seed", range(5))
def test_every_random_parameter_is_drawn_once_per_clip(seed):
    t = train_transform(CLIP_MEAN, CLIP_STD, size=32, short_side=40, flip=0.5, randaugment=(4, 7), erasing=1.0)
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

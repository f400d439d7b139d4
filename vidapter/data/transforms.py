"""Clip transforms on uint8 video tensors (T, C, H, W) with torchvision.transforms.v2.

Every random parameter (crop box, flip, RandAugment ops and magnitudes, erased region) is drawn once per call and
applied to all frames of the clip, because v2 treats a ``tv_tensors.Video`` as one sample. Outputs are float
(C, T, H, W), normalised with mean/std on the 0-255 scale (AIM_SPEC section 6).

Train: short side -> RandomResizedCrop(area 0.08-1, ratio 3/4-4/3) -> size -> flip(p) -> RandAugment(n, m) ->
normalise -> RandomErasing(p) (erased pixels = 0 after normalisation, i.e. the mean colour).
Val: short side 256, centre crop 224. Test: short side 224, centre crop or three crops along the longer side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


def _finish(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.ToDtype(torch.float32, scale=False), v2.Normalize(list(mean), list(std))]


class ClipTransform:
    """Wraps a v2 pipeline: (T, H, W, C) or (T, C, H, W) uint8 in, (C, T, H, W) float out."""

    def __init__(self, steps: list):
        self.pipeline = v2.Compose(steps)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        video = tv_tensors.Video(_tchw(frames))
        return self.pipeline(video).as_subclass(torch.Tensor).transpose(0, 1).contiguous()


def _tchw(frames: torch.Tensor) -> torch.Tensor:
    if frames.ndim != 4 or 3 not in (frames.shape[1], frames.shape[-1]):
        raise ValueError(f"expected frames (T, H, W, 3) or (T, 3, H, W), got {tuple(frames.shape)}")
    return frames if frames.shape[1] == 3 else frames.permute(0, 3, 1, 2)


def train_transform(
    mean: Sequence[float],
    std: Sequence[float],
    *,
    size: int = 224,
    short_side: int = 256,
    area: tuple[float, float] = (0.08, 1.0),
    flip: float = 0.5,
    randaugment: tuple[int, int] | None = None,
    erasing: float = 0.0,
) -> ClipTransform:
    steps = [
        v2.Resize(short_side, antialias=True),
        v2.RandomResizedCrop(size, scale=area, ratio=(3 / 4, 4 / 3), antialias=True),
    ]
    if flip > 0:
        steps.append(v2.RandomHorizontalFlip(flip))
    if randaugment is not None:
        steps.append(v2.RandAugment(num_ops=randaugment[0], magnitude=randaugment[1]))
    steps += _finish(mean, std)
    if erasing > 0:
        steps.append(v2.RandomErasing(erasing, value=0))
    return ClipTransform(steps)


def val_transform(mean: Sequence[float], std: Sequence[float], *, size: int = 224, short_side: int = 256):
    return ClipTransform([v2.Resize(short_side, antialias=True), v2.CenterCrop(size), *_finish(mean, std)])


class ThreeCrop:
    """MMAction2's ThreeCrop: three size x size crops along the longer side (start, centre, end). (T, C, H, W) ->
    (3, T, C, size, size) uint8."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        h, w = video.shape[-2:]
        s = self.size
        if min(h, w) < s:
            raise ValueError(f"three crops of {s} need a short side of at least {s}, got {h}x{w}")
        if w >= h:
            boxes = [((h - s) // 2, x) for x in (0, (w - s) // 2, w - s)]
        else:
            boxes = [(y, (w - s) // 2) for y in (0, (h - s) // 2, h - s)]
        return torch.stack([TF.crop(video, top, left, s, s) for top, left in boxes])


class MultiViewTransform:
    """Short side -> centre crop (crops=1) or three crops (crops=3). Output (crops, C, T, size, size) float."""

    def __init__(self, mean, std, *, size: int = 224, short_side: int = 224, crops: int = 1):
        if crops not in (1, 3):
            raise ValueError(f"test crops must be 1 or 3, got {crops}")
        self.crops = crops
        self.resize = v2.Resize(short_side, antialias=True)
        self.crop = ThreeCrop(size) if crops == 3 else v2.CenterCrop(size)
        self.finish = v2.Compose(_finish(mean, std))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        video = self.resize(tv_tensors.Video(_tchw(frames))).as_subclass(torch.Tensor)
        views = self.crop(video) if self.crops == 3 else self.crop(video).unsqueeze(0)
        return self.finish(views).as_subclass(torch.Tensor).transpose(1, 2).contiguous()


def mixup_cutmix(num_classes: int, mixup: float = 0.8, cutmix: float = 1.0):
    """Batch-level MixUp or CutMix (one chosen per batch) for (B, C, T, H, W) videos and int labels -> soft labels."""
    choices = []
    if mixup > 0:
        choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
    if cutmix > 0:
        choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
    if not choices:
        raise ValueError("mixup_cutmix needs mixup > 0 or cutmix > 0")
    pick = v2.RandomChoice(choices)

    def apply(videos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v, y = pick(tv_tensors.Video(videos.transpose(1, 2)), labels)  # v2 wants (B, T, C, H, W)
        return v.as_subclass(torch.Tensor).transpose(1, 2), y

    return apply

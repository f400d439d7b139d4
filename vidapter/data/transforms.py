"""Clip transforms on uint8 video tensors (T, C, H, W) with torchvision.transforms.v2.

Every random parameter (crop box, flip, RandAugment ops and magnitudes, erased region) is drawn once per call and
applied to all frames of the clip, because v2 treats a ``tv_tensors.Video`` as one sample. Outputs are float
(C, T, H, W), normalised with mean/std on the 0-255 scale (docs/recipes.md); or, with ``normalize=False``, uint8
(C, T, H, W) that ``Normalize`` turns into the same floats in the training step, on the GPU.

Train: short side -> RandomResizedCrop(area 0.08-1, ratio 3/4-4/3) -> size -> flip(p) -> colour jitter (ViT-L) ->
RandAugment(n, m) (imgaug's, as the AIM reference, or torchvision's) -> normalise -> RandomErasing(p) (erased pixels =
0 after normalisation, i.e. the mean colour).
Val: short side 256, centre crop 224. Test: short side 224, centre crop or three crops along the longer side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from vidapter.data.randaugment import ImgaugRandAugment
from vidapter.errors import ConfigError


def _finish(mean: Sequence[float], std: Sequence[float], normalize: bool = True) -> list:
    """The last steps: float normalisation, or none (uint8 leaves the loader; ``Normalize`` runs in the step)."""
    return [v2.ToDtype(torch.float32, scale=False), v2.Normalize(list(mean), list(std))] if normalize else []


class Normalize:
    """The training step's half of a ``normalize=False`` transform: uint8 (B, C, T, H, W) or (B, V, C, T, H, W) on
    any device -> float32 ``(x - mean) / std``, the same operations as torchvision's Normalize, so the numbers equal
    those of normalising in the loader (a uint8 clip is a quarter of a float32 one's bytes between processes and to
    the GPU). Float input passes through unchanged (a loader that already normalised)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.stats = {
            torch.device("cpu"): torch.tensor([list(mean), list(std)], dtype=torch.float32).view(2, 3, 1, 1, 1)
        }

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        if video.dtype != torch.uint8:
            return video
        if video.ndim not in (5, 6) or video.shape[-4] != 3:
            raise ValueError(f"expected uint8 video (B, 3, T, H, W) or (B, V, 3, T, H, W), got {tuple(video.shape)}")
        if video.device not in self.stats:  # copied to a device once, not every batch
            self.stats[video.device] = self.stats[torch.device("cpu")].to(video.device)
        mean, std = self.stats[video.device]
        return video.float().sub_(mean).div_(std)


class ClipTransform:
    """Wraps a v2 pipeline: (T, H, W, C) or (T, C, H, W) uint8 in, (C, T, H, W) float (or uint8) out."""

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
    short_side_range: tuple[int, int] | None = None,
    flip: float = 0.5,
    randaugment: tuple[int, int] | None = None,
    randaugment_impl: str = "imgaug",
    erasing: float = 0.0,
    color_jitter: tuple[float, float, float, float] | None = None,
    seed: int = 0,
    normalize: bool = True,
) -> ClipTransform:
    """The training clip transform (module docstring); ``normalize=False`` leaves clips uint8 for ``Normalize`` in the
    step (not with ``erasing``, whose erased pixels are exactly 0 after normalisation)."""
    if erasing > 0 and not normalize:
        raise ConfigError("RandomErasing (data.erasing > 0) fills with 0 after normalisation: normalise in the loader")
    if short_side_range is not None:  # ST-Adapter's K400 recipe: scale jitter, then a plain random crop
        lo, hi = short_side_range
        steps = [v2.RandomShortestSize(list(range(lo, hi + 1)), interpolation=v2.InterpolationMode.BICUBIC,
                                       antialias=True), v2.RandomCrop(size)]  # fmt: skip
    else:
        steps = [
            v2.Resize(short_side, antialias=True),
            v2.RandomResizedCrop(size, scale=area, ratio=(3 / 4, 4 / 3), antialias=True),
        ]
    if flip > 0:
        steps.append(v2.RandomHorizontalFlip(flip))
    if color_jitter is not None:
        steps.append(ColorJitter(*color_jitter, seed=seed))
    if randaugment is not None:
        if randaugment_impl == "imgaug":  # the AIM reference's, through MMAction2's Imgaug (data/randaugment.py)
            steps.append(ImgaugRandAugment(*randaugment))
        elif randaugment_impl == "torchvision":
            steps.append(v2.RandAugment(num_ops=randaugment[0], magnitude=randaugment[1]))
        else:
            raise ConfigError(f"data.randaugment_impl must be 'imgaug' or 'torchvision', got {randaugment_impl!r}")
    steps += _finish(mean, std, normalize)
    if erasing > 0:
        # timm's RandomErasing as the reference calls it (mode 'const', area 0.02-1/3 of the frame, aspect 0.3-1/0.3
        # log-uniform, 10 attempts, one region): the same distribution as torchvision's with these bounds
        steps.append(v2.RandomErasing(erasing, scale=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3), value=0))
    return ClipTransform(steps)


class ColorJitter:
    """MMAction2 0.x's ``ColorJitter`` (the reference fork's), on uint8 (T, C, H, W) clips.

    Brightness, contrast and saturation factors are drawn from U(1 - x, 1 + x), the hue factor from U(-hue, hue), once
    per clip. The four operations run in one order for the whole run, drawn once from ``seed`` (the reference draws
    it when its pipeline is built). The arithmetic follows the reference on the 0-255 scale in float32: brightness
    scales; contrast blends each frame with the mean of its grey image; saturation blends each pixel with its grey
    value (grey = 0.2989 R + 0.587 G + 0.114 B); hue clips to uint8 and rotates OpenCV's 8-bit hue (0-180) by
    ``int(hue * 255)`` units of 2 degrees (so 0.1 reaches 50 degrees, not torchvision's 36). The result is clipped
    to 0-255 and truncated to uint8.
    """

    NAMES, LIMITS = ("brightness", "contrast", "saturation", "hue"), (1, 1, 1, 0.5)  # each value in [0, limit]

    def __init__(self, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1, *, seed: int = 0):
        for name, value, top in zip(self.NAMES, (brightness, contrast, saturation, hue), self.LIMITS, strict=True):
            if not 0 <= value <= top:
                raise ConfigError(f"colour jitter {name} must be in [0, {top}], got {value}")
        self.ranges = [(1 - brightness, 1 + brightness), (1 - contrast, 1 + contrast),
                       (1 - saturation, 1 + saturation), (-hue, hue)]  # fmt: skip
        self.order = torch.randperm(4, generator=torch.Generator().manual_seed(seed)).tolist()

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        factors = [lo + (hi - lo) * float(torch.rand(())) for lo, hi in self.ranges]
        out = color_jitter(video.as_subclass(torch.Tensor), *factors, order=self.order)
        return tv_tensors.wrap(out, like=video) if isinstance(video, tv_tensors.Video) else out


def _grey(x: torch.Tensor) -> torch.Tensor:
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def color_jitter(video, brightness: float, contrast: float, saturation: float, hue: float, *, order=(0, 1, 2, 3)):
    """One clip's colour jitter with given factors (see ``ColorJitter``). (T, 3, H, W) uint8 RGB -> same.

    Every operation acts within a frame, so frames go one at a time (their planes stay in cache: 17 % faster)."""
    factors = (brightness, contrast, saturation, hue)
    return torch.cat([_jitter_frames(f, *factors, order=order) for f in video.split(1)])


def _jitter_frames(video, brightness: float, contrast: float, saturation: float, hue: float, *, order):
    x = video.to(torch.float32, copy=True)  # worked on in place
    for op in order:
        if op == 0 and brightness != 1:
            x.mul_(brightness)
        elif op == 1 and contrast != 1:
            mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)  # per frame
            x.mul_(contrast).add_(((1 - contrast) * mean.double()).float())  # NumPy 1.x: scalar product in float64
        elif op == 2 and saturation != 1:
            grey = _grey(x).mul_(1 - saturation)
            x.mul_(saturation).add_(grey)
        elif op == 3 and hue != 0:
            h, sat, v = _hsv_cv(x.clamp(0, 255).to(torch.uint8))
            x = _rgb_cv((h + 180 + int(hue * 255)) % 180, sat, v).float()
    return x.clamp(0, 255).to(torch.uint8)


# OpenCV's 8-bit RGB -> HSV: fixed-point reciprocals, 12 fractional bits, rounded as OpenCV's tables
_SDIV = torch.tensor([0] + [round((255 << 12) / i) for i in range(1, 256)], dtype=torch.int32)
_HDIV = torch.tensor([0] + [round((180 << 12) / (6 * i)) for i in range(1, 256)], dtype=torch.int32)


def _hsv_cv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """int32 (h, s, v) of uint8 (..., 3, H, W) RGB; h in [-30, 150], OpenCV's hue is ``(h + 180) % 180``."""
    r, g, b = rgb.to(torch.int32).unbind(-3)
    v = torch.maximum(torch.maximum(r, g), b)
    diff = v - torch.minimum(torch.minimum(r, g), b)
    s = (diff * _SDIV.index_select(0, v.flatten()).view_as(v) + 2048) >> 12
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HDIV.index_select(0, diff.flatten()).view_as(diff) + 2048) >> 12
    return h, s, v


def _rgb_table() -> torch.Tensor:
    """(180 * 256, 3) float32: ``1 - s * w`` per (hue, saturation) byte and R, G, B, as OpenCV's vectorised
    HSV -> RGB computes it (AVX2 with FMA: the product and the subtraction rounded once, exact here in float64).
    w is 0, 1, the hue's fraction f within its sector of 60 degrees, or 1 - f, by sector and channel."""
    sector_w = torch.tensor([[0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32)
    sector_f = torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, -1], [0, 1, 0], [-1, 0, 0], [0, 0, 1]], dtype=torch.float32)
    h = torch.arange(180, dtype=torch.float32) * (6 / 180)
    sector = h.trunc()
    f = (h - sector).unsqueeze(-1)
    w = sector_w[sector.long()] + sector_f[sector.long()] * f  # w + (-1) * f is 1 - f in float32, as OpenCV's
    s = torch.arange(256, dtype=torch.float32) * (1 / 255)
    return (1 - s.double().view(1, 256, 1) * w.double().view(180, 1, 3)).float().view(-1, 3)


_RGB_TABLE = _rgb_table()


def _rgb_cv(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) RGB of integer OpenCV HSV planes (h in [0, 180)): ``trunc(v/255 * (1 - s*w) * 255)``."""
    rows = _RGB_TABLE.index_select(0, (h.to(torch.int32) * 256 + s).flatten()).view(*h.shape, 3)
    rgb = rows.mul_(v.float().mul_(1 / 255).unsqueeze(-1)).mul_(255)  # in [0, 255]: the uint8 cast truncates
    return rgb.movedim(-1, -3).to(torch.uint8)


def rgb_to_hsv_cv(rgb: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``COLOR_RGB2HSV`` on uint8, bit for bit: (..., 3, H, W) RGB -> (..., 3, H, W) HSV, H in [0, 180)."""
    h, s, v = _hsv_cv(rgb)
    return torch.stack([(h + 180) % 180, s, v], -3).to(torch.uint8)


def hsv_to_rgb_cv(hsv: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``COLOR_HSV2RGB`` on uint8 (H in [0, 180)): (..., 3, H, W) HSV -> (..., 3, H, W) RGB.

    Bit for bit the vectorised path (FMA) that OpenCV 4.x-5.x takes for whole blocks of four SIMD registers in a row,
    32 pixels with AVX2, 64 with AVX-512: float32, ``1 - s*h`` fused, the result truncated. OpenCV rounds instead in
    the pixels after the last whole block (its scalar tail), which this does not copy: on an AVX-512 machine that is
    the last 32 columns of a 224-wide frame, so the reference itself differs there between machines by one level.
    """
    h, s, v = hsv.to(torch.int32).unbind(-3)
    return _rgb_cv(h, s, v)


def val_transform(mean: Sequence[float], std: Sequence[float], *, size: int = 224, short_side: int = 256,
                  normalize: bool = True):  # fmt: skip
    return ClipTransform([v2.Resize(short_side, antialias=True), v2.CenterCrop(size), *_finish(mean, std, normalize)])


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
    """Short side -> centre crop (crops=1) or three crops (crops=3). Output (crops, C, T, size, size) float, or uint8
    with ``normalize=False``."""

    def __init__(self, mean, std, *, size: int = 224, short_side: int = 224, crops: int = 1, normalize: bool = True):
        if crops not in (1, 3):
            raise ConfigError(f"test crops must be 1 or 3, got {crops}")
        self.crops = crops
        self.resize = v2.Resize(short_side, antialias=True)
        self.crop = ThreeCrop(size) if crops == 3 else v2.CenterCrop(size)
        self.finish = v2.Compose(_finish(mean, std, normalize) or [v2.Identity()])

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
        raise ConfigError("mixup_cutmix needs mixup > 0 or cutmix > 0")
    pick = v2.RandomChoice(choices)

    def apply(videos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v, y = pick(tv_tensors.Video(videos.transpose(1, 2)), labels)  # v2 wants (B, T, C, H, W)
        return v.as_subclass(torch.Tensor).transpose(1, 2), y

    return apply

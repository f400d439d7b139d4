"""imgaug's ``RandAugment(n, m)`` (imgaug 0.4.0, ``imgaug/augmenters/collections.py``), the augmentation the AIM
reference applies on SSv2 through MMAction2's ``Imgaug`` wrapper: one deterministic draw for the whole clip, applied to
every frame.

It is not torchvision's RandAugment. Before its ``n`` operations it always
1. flips left-right with probability 0.5 (so the reference's SSv2 training flips half its clips although the config
   sets ``Flip(flip_ratio=0)``), then
2. crops each side by ``round(size * u / 224)`` pixels, u ~ U[0, m) drawn per side, and resizes back (bilinear).
Then it applies ``n`` of 18 operations, chosen without replacement, in random order, each at the fixed magnitude
``m`` on a 0-30 scale with a random sign where the operation has one (``cval`` 128 fills new pixels):
identity, autocontrast, equalize (imgaug's own formula, which differs from PIL's when a channel has no 255), invert,
rotate +-m degrees about the centre, posterize to ``8 - int(m * 0.2)`` bits, solarize above ``256 - int(m * 256 / 30)``,
colour / contrast / brightness / sharpness enhancement by ``1 +- m * 0.03``, shear x / y by ``+-m * deg(0.3) / 30``
degrees about the top-left corner (PIL's affine takes the tanh of the angle in radians), translate x / y by
``+-m * 0.011`` of the size, one square cutout of ``m * (20 / 32) / 30`` of the height, PIL's BLUR and SMOOTH filters.
Affine operations, enhancements and filters call PIL as imgaug does (nearest-neighbour sampling); the look-up-table
operations are imgaug's formulas. The constants are float32 as imgaug stores them.

Deviation: the crop's resize back uses PyTorch's bilinear interpolation (the same sampling grid as OpenCV's
INTER_LINEAR, which imgaug calls, with float instead of fixed-point arithmetic: values differ by at most one level,
about one in eight in the test against imgaug's outputs);
random numbers come from PyTorch's generator (per clip, seeded by the dataset), not imgaug's, so the same seed does
not give imgaug's draws, only the same distribution.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from torchvision import tv_tensors

from vidapter.errors import ConfigError

M_MAX = 30
# imgaug's order of the operations (the order matters only to draws, not to the distribution)
OPS = ("identity", "autocontrast", "equalize", "invert", "rotate", "posterize", "solarize", "color", "contrast",
       "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y", "cutout", "blur",
       "smooth")  # fmt: skip
_SIGNED = {"rotate", "color", "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y"}
_ENHANCE = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast, "brightness": ImageEnhance.Brightness,
            "sharpness": ImageEnhance.Sharpness}  # fmt: skip


def _level(m: int, maxval: float) -> float:
    """imgaug's _float_parameter: m times maxval / 30, in float32."""
    return float(np.float32(m) * np.float32(maxval / M_MAX))


def magnitudes(m: int) -> dict[str, float]:
    """The (unsigned) parameter of each operation at magnitude m."""
    return {
        "rotate": _level(m, 30),  # degrees
        "posterize": 8 - min(max(int(_level(m, 6)), 0), 6),  # bits kept
        "solarize": min(max(256 - int(_level(m, 256)), 0), 256),  # threshold
        "enhance": _level(m, 0.9),  # factor 1 +- this, clipped to [0.1, 1.9]
        "shear": _level(m, float(np.rad2deg(0.3))),  # degrees
        "translate": _level(m, 0.33),  # fraction of the size
        "cutout": min(max(_level(m, 20 / 32), 0.0), 20 / 32),  # fraction of the height
    }


@functools.lru_cache(maxsize=64)
def _affine_coeffs(h: int, w: int, rotate: float, shear: tuple, translate: tuple, center: tuple) -> tuple:
    """imgaug's pillike.Affine matrix: forward centre^-1 . translate . shear . rotate . centre in float32, inverted;
    the six coefficients PIL's AFFINE transform takes. Cached: every frame of a clip uses the same."""
    cx, cy = w * center[0], h * center[1]
    f32 = np.float32
    move_in = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=f32)
    move_out = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=f32)
    theta = np.deg2rad(rotate)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=f32)
    shx, shy = np.tanh(np.deg2rad(shear[0])), np.tanh(np.deg2rad(shear[1]))
    shr = np.array([[1, shx, 0], [shy, 1, 0], [0, 0, 1]], dtype=f32)
    trans = np.array([[1, 0, translate[0] * w], [0, 1, translate[1] * h], [0, 0, 1]], dtype=f32)
    inv = np.linalg.inv(move_out @ trans @ shr @ rot @ move_in).astype(f32)
    return tuple(float(v) for v in inv[:2].reshape(-1))


def _affine(frame: np.ndarray, *, rotate=0.0, shear=(0.0, 0.0), translate=(0.0, 0.0), center=(0.0, 0.0), cval=128):
    """imgaug's pillike.Affine on one frame: PIL's AFFINE transform (nearest neighbour, fill (cval, cval, cval))."""
    coeffs = _affine_coeffs(*frame.shape[:2], rotate, shear, translate, center)
    img = Image.fromarray(frame)
    return np.asarray(img.transform(img.size, Image.AFFINE, coeffs, fillcolor=(cval, cval, cval)))


def autocontrast(frame: np.ndarray) -> np.ndarray:
    """Per channel: min -> 0, max -> 255 (PIL's ImageOps.autocontrast with cutoff 0, as imgaug computes it)."""
    out = np.empty_like(frame)
    for ch in range(frame.shape[2]):
        x = frame[..., ch]
        lo, hi = int(x.min()), int(x.max())
        if hi <= lo:
            out[..., ch] = x
            continue
        scale = 255.0 / (hi - lo)
        lut = np.clip(np.arange(256, dtype=np.float64) * scale - lo * scale, 0, 255).astype(np.uint8)
        out[..., ch] = lut[x]
    return out


def equalize(frame: np.ndarray) -> np.ndarray:
    """imgaug's equalize: PIL's ImageOps.equalize below 64 * 64 array values (H * W * C), else imgaug's own
    _equalize_no_pil_, whose step counts all bins but 255 (PIL's: all but the highest occupied one)."""
    if frame.size < 64 * 64:
        return np.asarray(ImageOps.equalize(Image.fromarray(frame)))
    out = np.empty_like(frame)
    for ch in range(frame.shape[2]):
        x = frame[..., ch]
        hist = np.bincount(x.reshape(-1), minlength=256).astype(np.int64)
        step = int(hist[:-1].sum()) // 255
        if np.count_nonzero(hist) <= 1 or step == 0:
            out[..., ch] = x
            continue
        n = step // 2
        lut = np.empty(256, dtype=np.int64)
        lut[0] = n
        lut[1:] = n + np.cumsum(hist)[:-1]
        out[..., ch] = np.minimum(lut // step, 255).astype(np.uint8)[x]
    return out


def _cutout(frame: np.ndarray, size: float, pos: tuple[float, float], cval: int) -> np.ndarray:
    """One square of side ``size`` x height centred at ``pos`` (fractions), truncated to ints, clipped, filled."""
    h, w = frame.shape[:2]
    f32 = np.float32
    half = f32(size) * f32(h) / f32(2)
    cx, cy = f32(pos[0]) * f32(w), f32(pos[1]) * f32(h)
    x1, x2 = (min(max(int(v), 0), w) for v in (cx - half, cx + half))
    y1, y2 = (min(max(int(v), 0), h) for v in (cy - half, cy + half))
    out = frame.copy()
    out[y1:y2, x1:x2] = cval
    return out


def apply_op(frame: np.ndarray, op: str, sign: float, mags: dict, cutout_pos=(0.5, 0.5), cval: int = 128):
    """One operation on one (H, W, 3) uint8 frame."""
    if op == "identity":
        return frame
    if op == "autocontrast":
        return autocontrast(frame)
    if op == "equalize":
        return equalize(frame)
    if op == "invert":
        return 255 - frame
    if op == "posterize":
        return frame & np.uint8((0xFF << (8 - mags["posterize"])) & 0xFF)
    if op == "solarize":
        return np.where(frame >= mags["solarize"], 255 - frame, frame).astype(np.uint8)
    if op in _ENHANCE:
        factor = float(np.clip(np.float32(1.0) + np.float32(sign * mags["enhance"]), 0.1, 1.9))
        return np.asarray(_ENHANCE[op](Image.fromarray(frame)).enhance(factor))
    if op in ("blur", "smooth"):
        return np.asarray(Image.fromarray(frame).filter(ImageFilter.BLUR if op == "blur" else ImageFilter.SMOOTH))
    if op == "rotate":
        return _affine(frame, rotate=sign * mags["rotate"], center=(0.5, 0.5), cval=cval)
    if op in ("shear_x", "shear_y"):
        angle = sign * mags["shear"]
        return _affine(frame, shear=(angle, 0.0) if op == "shear_x" else (0.0, angle), cval=cval)
    if op in ("translate_x", "translate_y"):
        shift = sign * mags["translate"]
        return _affine(frame, translate=(shift, 0.0) if op == "translate_x" else (0.0, shift), cval=cval)
    if op == "cutout":
        return _cutout(frame, mags["cutout"], cutout_pos, cval)
    raise ValueError(f"unknown operation {op!r}")


def crop_and_resize(video: torch.Tensor, sides: tuple[int, int, int, int]) -> torch.Tensor:
    """Crop (top, right, bottom, left) pixels off every frame of (T, C, H, W) uint8 and resize back (bilinear)."""
    top, right, bottom, left = sides
    if not any(sides):
        return video
    t, c, h, w = video.shape
    part = video[:, :, top : h - bottom, left : w - right].float()
    out = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    return out.round().clamp(0, 255).to(torch.uint8)


class ImgaugRandAugment:
    """imgaug's RandAugment(n, m) on a uint8 clip (T, C, H, W): one draw per clip, every frame the same."""

    def __init__(self, n: int, m: int, cval: int = 128):
        if not (0 <= n <= len(OPS)) or m < 0:
            raise ConfigError(f"RandAugment needs 0 <= n <= {len(OPS)} and m >= 0, got n={n}, m={m}")
        self.n, self.m, self.cval = n, m, cval
        self.mags = magnitudes(m)

    def draw(self, height: int, width: int) -> dict:
        """Every random choice of one clip: flip, crop sides, the operations in order, their signs, cutout centre."""
        flip = bool(torch.rand(()) < 0.5)
        u = torch.rand(4) * self.m  # top, right, bottom, left: U[0, m)
        sizes = (height, width, height, width)
        sides = tuple(
            int(np.round(np.float32(s) * (np.float32(v) / np.float32(224)))) for s, v in zip(sizes, u, strict=True)
        )
        ops = [OPS[i] for i in torch.randperm(len(OPS))[: self.n].tolist()]
        signs = [1.0 if (op not in _SIGNED or bool(torch.rand(()) < 0.5)) else -1.0 for op in ops]
        cutout_pos = tuple(torch.rand(2).tolist())
        return {"flip": flip, "sides": sides, "ops": ops, "signs": signs, "cutout_pos": cutout_pos}

    def apply(self, video: torch.Tensor, params: dict) -> torch.Tensor:
        if params["flip"]:
            video = video.flip(-1)
        video = crop_and_resize(video, params["sides"])
        frames = video.permute(0, 2, 3, 1).contiguous().numpy()  # (T, H, W, C)
        out = []
        for frame in frames:
            for op, sign in zip(params["ops"], params["signs"], strict=True):
                frame = apply_op(frame, op, sign, self.mags, params["cutout_pos"], self.cval)
            out.append(np.ascontiguousarray(frame))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        out = self.apply(video.as_subclass(torch.Tensor), self.draw(video.shape[-2], video.shape[-1]))
        return tv_tensors.wrap(out, like=video) if isinstance(video, tv_tensors.Video) else out

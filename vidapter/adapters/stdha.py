"""ZeroI2V's spatio-temporal dual-headed attention (STDHA): chosen heads of each block's frozen attention take their
keys and values from another frame, so the image model attends across time with no new parameter.

Li, Zhu, Wang, "ZeroI2V: Zero-Cost Adaptation of Pre-trained Transformers from Image to Video", ECCV 2024, arXiv
2310.01324; official code MCG-NJU/ZeroI2V at f091983e (``mmaction/models/common/stdha.py``, ``TemporalShift``): K and
V (not Q) are shifted along time per channel block before the attention, every token (class token included), and a
frame with no source frame keeps its own (the shift starts from a copy: no padding, no wrap-around). Head h owns
channels [h * hd, (h + 1) * hd) of k and v, so a block of channels is a block of heads.

``HEAD_SHIFTS`` gives the official configs' assignment as offsets per head (-1: head reads frame t - 1).
"""

from __future__ import annotations

import torch

from vidapter.errors import ConfigError
from vidapter.models.vit import Attention, VisionTransformer, rebase, replace_module

# configs/recognition/vit_zero_clip/ of the official repository, as offsets of heads 0, 1, ... (the rest: 0)
HEAD_SHIFTS = {
    "b16_k400": (-1, 1),  # shift_div 12: h0 -> t-1, h1 -> t+1 (also the HMDB51/UCF101 u8 configs)
    "b16_sthv2": (-1, 1, -2, 2),  # div 12, long 12, long shift right
    "l14_k400_8x16": (-1, -1, 1, 1),  # div 8 on 1024 channels: 128 = two heads per direction
    "l14_k400_32x4": (-1, -1, 1, 1, -2, -2),  # div 8, long 8
    "l14_sthv2": (-1, -1, 1, 1, -2, 2, -3),  # the _long backbone: 8 / 16 / 16, no +3
}


def shift_heads(x: torch.Tensor, frames: int, shifts: tuple[int, ...]) -> torch.Tensor:
    """(B*T, H, N, hd) -> the same shape, head h of frame t taken from frame t + shifts[h] where that frame exists
    (else its own frame's, as ZeroI2V's TemporalShift, which starts from a copy); heads past len(shifts) unshifted."""
    out = x.clone().view(-1, frames, *x.shape[1:])
    src = x.view(-1, frames, *x.shape[1:])
    for h, s in enumerate(shifts):
        if s > 0:
            out[:, : frames - s, h] = src[:, s:, h]
        elif s < 0:
            out[:, -s:, h] = src[:, : frames + s, h]
    return out.view_as(x)


class ShiftedAttention(Attention):
    """The block's frozen attention with head h of frame t reading its keys and values from frame t +
    ``head_shifts[h]``, when the frames of a video come in (``num_frames``; images and AIM's temporal pass give
    none). The same tensors and names as the attention it replaces."""

    head_shifts: tuple[int, ...] = ()

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, math: bool = False,
               num_frames: int | None = None) -> torch.Tensor:  # fmt: skip
        if num_frames is not None:
            k, v = shift_heads(k, num_frames, self.head_shifts), shift_heads(v, num_frames, self.head_shifts)
        return super().attend(q, k, v, math=math, num_frames=num_frames)


def shifted(attn: Attention, shifts: tuple[int, ...]) -> ShiftedAttention:
    """``attn`` with these per-head frame offsets, as a replacement module."""
    new = rebase(attn, ShiftedAttention)
    new.head_shifts = tuple(int(s) for s in shifts)
    return new


def apply_stdha(vit: VisionTransformer, shifts: tuple[int, ...], layers: list[int] | None = None) -> list[int]:
    """Give the attention of every block (or of ``layers``) of ``vit`` these per-head frame offsets, in place; returns
    the layers changed. No parameter is added: the attention is replaced by a ``ShiftedAttention`` of the same
    tensors; ``()`` puts the plain attention back."""
    heads = vit.facts.heads
    if len(shifts) > heads:
        raise ConfigError(f"model.head_shifts has {len(shifts)} offsets, but the backbone has {heads} heads")
    chosen = list(range(len(vit.blocks))) if layers is None else layers
    for i in chosen:
        attn = vit.blocks[i].attn
        if shifts:
            replace_module(vit, attn, shifted(attn, shifts))
        elif isinstance(attn, ShiftedAttention):  # () puts the plain attention back
            plain = rebase(attn, Attention)
            plain.__dict__.pop("head_shifts", None)
            replace_module(vit, attn, plain)
    return chosen if shifts else []

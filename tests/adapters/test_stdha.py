"""STDHA (ZeroI2V's spatio-temporal dual-headed attention) against a transcription of the official TemporalShift, and
its invariants: no parameters, nothing changes without offsets, frames interact only through the shifted heads."""

from __future__ import annotations

import pytest
import torch
from peers import HEADS, randomize_

from vidapter.adapters.stdha import HEAD_SHIFTS, apply_stdha, shift_heads
from vidapter.classifier import build_model
from vidapter.config import ModelConfig


def _temporal_shift(x: torch.Tensor, frames: int, shift_div: int, long_div: int = 0, long_right: bool = False):
    """The official TemporalShift (stdha.py, non-divide_head path) on (N, B*T, C): a copy, then channels [0, fold)
    from t-1, [fold, 2 fold) from t+1, the next C // long_div from t-2 and, with long_right, the next from t+2."""
    n, bt, c = x.shape
    x = x.view(n, bt // frames, frames, c)
    out = x.clone()
    fold = c // shift_div
    out[:, :, 1:, :fold] = x[:, :, :-1, :fold]
    out[:, :, :-1, fold : 2 * fold] = x[:, :, 1:, fold : 2 * fold]
    if long_div:
        lf, start = c // long_div, 2 * fold
        out[:, :, 2:, start : start + lf] = x[:, :, :-2, start : start + lf]
        if long_right:
            out[:, :, :-2, start + lf : start + 2 * lf] = x[:, :, 2:, start + lf : start + 2 * lf]
    return out.view(n, bt, c)


@pytest.mark.parametrize(
    "config, channels, heads, shift_div, long_div, long_right",
    [("b16_k400", 768, 12, 12, 0, False), ("b16_sthv2", 768, 12, 12, 12, True), ("l14_k400_8x16", 1024, 16, 8, 0,
     False), ("l14_k400_32x4", 1024, 16, 8, 8, False)],
)  # fmt: skip
def test_head_shifts_equal_the_official_temporal_shift(config, channels, heads, shift_div, long_div, long_right):
    b, t, n = 2, 8, 5
    kv = torch.randn(b * t, heads, n, channels // heads)  # (B*T, H, N, hd), as vidapter's attention holds k and v
    ours = shift_heads(kv, t, HEAD_SHIFTS[config])
    official = _temporal_shift(kv.permute(2, 0, 1, 3).reshape(n, b * t, channels), t, shift_div, long_div, long_right)
    torch.testing.assert_close(ours.permute(2, 0, 1, 3).reshape(n, b * t, channels), official, atol=0, rtol=0)


def test_stdha_adds_nothing_and_mixes_frames_only_through_shifted_heads(video):
    cfg = dict(backbone="tiny_clip", num_frames=4, num_classes=3, adapters=[])
    plain = randomize_(build_model(ModelConfig(**cfg))).eval()
    shifted = build_model(ModelConfig(**cfg, head_shifts=[-1, 1]))
    shifted.load_state_dict(plain.state_dict())
    shifted.eval()
    assert sum(p.numel() for p in shifted.parameters()) == sum(p.numel() for p in plain.parameters())
    with torch.no_grad():
        base = plain.forward_features(video)
        out = shifted.forward_features(video)
        assert not torch.allclose(out, base)
        changed = video.clone()
        changed[:, :, 3] = torch.randn_like(changed[:, :, 3])  # the last frame only
        moved = (shifted.forward_features(changed) - out).abs().amax(dim=(0, 2))  # per frame
    assert moved[2] > 1e-4 and moved[3] > 1e-4  # frame 2 reads frame 3 through head 1
    assert moved[0] < 1e-6  # two blocks: frame 0 is reached from frame 2 at most
    with torch.no_grad():
        apply_stdha(shifted.backbone, ())
        torch.testing.assert_close(shifted.forward_features(video), base, atol=0, rtol=0)


def test_too_many_offsets_are_refused():
    with pytest.raises(ValueError, match=f"model.head_shifts has {HEADS + 1} offsets, but the backbone has {HEADS}"):
        build_model(ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=3, head_shifts=[1] * (HEADS + 1)))

"""MMAction2 SampleFrames semantics, by numbers."""

from __future__ import annotations

import numpy as np
import pytest

from vidapter.data.sampling import FrameSampler, dense, segments_seq, uniform


def test_dense_test_clips_evenly_spaced():
    # 300 frames, 8x8 clips (span 64), 3 clips: avg = (300-64+1)/3 = 79; offsets = int(i*79 + 39.5)
    idx = dense(8, 8, 3)(300, train=False)
    assert idx.shape == (3, 8)
    np.testing.assert_array_equal(idx[:, 0], [39, 118, 197])
    np.testing.assert_array_equal(idx[0], 39 + 8 * np.arange(8))


def test_dense_train_random_offset_within_range():
    s = dense(8, 16)
    starts = {int(s(300, train=True, rng=np.random.default_rng(k))[0, 0]) for k in range(200)}
    assert min(starts) >= 0 and max(starts) <= 300 - 128 and len(starts) > 50


def test_short_video_loops():
    # 50 frames, span 128: train avg < 0, 50 > max(1, 128) false, avg != 0 -> offset 0; indices wrap around
    idx = dense(8, 16)(50, train=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx[0], np.mod(16 * np.arange(8), 50))
    np.testing.assert_array_equal(dense(8, 16)(50, train=False)[0], np.mod(16 * np.arange(8), 50))


def test_uniform_segments():
    s = uniform(8)
    test = s(80, train=False)
    assert test.shape == (1, 8)
    np.testing.assert_array_equal(test[0], np.arange(8) * 10 + 5)  # segment centres
    for k in range(20):
        train = s(80, train=True, rng=np.random.default_rng(k))[0]
        assert all(10 * i <= f < 10 * (i + 1) for i, f in enumerate(train))  # one frame per segment


def test_uniform_on_a_video_shorter_than_t():
    # 5 frames, 8 segments: avg 0 -> ratio 5/8 -> around(i * 0.625)
    idx = uniform(8)(5, train=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx[0], np.around(np.arange(8) * 0.625).astype(int))


def test_train_sorted_random_when_between():
    # 100 frames, span 64, 3 clips: avg = 37//3 = 12 > 0 -> base + randint(12)
    idx = FrameSampler(8, 8, 3)(100, train=True, rng=np.random.default_rng(3))
    assert all(0 <= o - 12 * i < 12 for i, o in enumerate(idx[:, 0]))


@pytest.mark.parametrize("bad", [dict(clip_len=0), dict(clip_len=8, frame_interval=0), dict(clip_len=8, num_clips=0)])
def test_bad_sampler(bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        FrameSampler(**bad)


def _get_seq_frames(num_frames: int, clip_len: int, test_mode: bool) -> list:
    """The AIM reference's SampleFrames.get_seq_frames (frame_uniform=True), transcribed; training returns the inclusive
    range each frame is drawn from (random.randint(start, end)) instead of a draw."""
    seg_size = float(num_frames - 1) / clip_len
    seq = []
    for i in range(clip_len):
        start = int(np.round(seg_size * i))
        end = int(np.round(seg_size * (i + 1)))
        seq.append((start + end) // 2 if test_mode else (start, end))
    return seq


def test_segments_seq_matches_the_reference_example():
    """40 frames at T = 8: the reference tests 2 7 12 17 22 26 31 36 (TSN centres would be 2 7 12 17 22 27 32 37)."""
    np.testing.assert_array_equal(segments_seq(8)(40, train=False)[0], [2, 7, 12, 17, 22, 26, 31, 36])
    np.testing.assert_array_equal(uniform(8)(40, train=False)[0], [2, 7, 12, 17, 22, 27, 32, 37])


@pytest.mark.parametrize("t", [8, 16, 32])
def test_segments_seq_equals_the_reference_for_every_length(t):
    s = segments_seq(t)
    for n in range(1, 401):
        np.testing.assert_array_equal(s(n, train=False)[0], _get_seq_frames(n, t, test_mode=True), err_msg=f"n={n}")
        start, end = s.bounds(n)
        assert list(zip(start.tolist(), end.tolist(), strict=True)) == _get_seq_frames(n, t, test_mode=False), n
        assert start.min() >= 0 and end.max() <= n - 1


@pytest.mark.parametrize("n, t", [(40, 8), (5, 8), (1, 8), (301, 32)])
def test_segments_seq_training_draws_cover_each_inclusive_range(n, t):
    """Every frame's draw stays in its [start, end], both ends included, each value about equally often."""
    ranges = _get_seq_frames(n, t, test_mode=False)
    draws = np.concatenate([segments_seq(t)(n, train=True, rng=np.random.default_rng(k)) for k in range(400)])
    for i, (start, end) in enumerate(ranges):
        values, counts = np.unique(draws[:, i], return_counts=True)
        assert values.tolist() == list(range(start, end + 1)), (i, values)
        assert counts.min() > 400 / len(values) / 2

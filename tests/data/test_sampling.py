"""MMAction2 SampleFrames semantics, by numbers."""

from __future__ import annotations

import numpy as np
import pytest

from vidapter.data.sampling import FrameSampler, dense, uniform


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

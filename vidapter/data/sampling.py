"""Which frames a clip uses: MMAction2's ``SampleFrames`` semantics, exactly (docs/recipes.md).

Dense (Kinetics): a clip spans ``clip_len * frame_interval`` frames; train takes one clip at a random offset, test
``num_clips`` evenly spaced clips. Uniform (TSN / SSv2 / Diving-48) is the same rule with ``clip_len=1,
frame_interval=1, num_clips=T``: T equal segments, one random frame in each for training, segment centres for test.
Indices past the end wrap around (``out_of_bound_opt='loop'``), so a short video repeats from its start.

Sequence segments (SSv2 and Diving-48 in the AIM reference: ``SampleFrames(frame_uniform=True)``, SlowFast's SSv2
``get_seq_frames``) are another rule: T segments over [0, num_frames - 1] with ``seg = (num_frames - 1) / T``, segment i
from ``round(seg * i)`` to ``round(seg * (i + 1))`` (rounding halves to even); training draws a frame from each with
both ends included (neighbouring segments share their boundary frame), testing takes ``(start + end) // 2``. Every
index lies in [0, num_frames), so short videos repeat frames instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidapter.errors import ConfigError


@dataclass(frozen=True)
class FrameSampler:
    """Frame indices for ``num_clips`` clips of ``clip_len`` frames, ``frame_interval`` apart."""

    clip_len: int
    frame_interval: int = 1
    num_clips: int = 1

    def __post_init__(self):
        for name in ("clip_len", "frame_interval", "num_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def offsets(self, num_frames: int, train: bool, rng: np.random.Generator) -> np.ndarray:
        """Start index of each clip (MMAction2 ``_get_train_clips`` / ``_get_test_clips``)."""
        span = self.clip_len * self.frame_interval
        n = self.num_clips
        if train:
            avg = (num_frames - span + 1) // n
            if avg > 0:
                return np.arange(n) * avg + rng.integers(0, avg, n)
            if num_frames > max(n, span):
                return np.sort(rng.integers(0, num_frames - span + 1, n))
            if avg == 0:
                ratio = (num_frames - span + 1.0) / n
                return np.around(np.arange(n) * ratio).astype(np.int64)
            return np.zeros(n, dtype=np.int64)
        avg = (num_frames - span + 1) / float(n)
        if num_frames > span - 1:
            return (np.arange(n) * avg + avg / 2.0).astype(np.int64)
        return np.zeros(n, dtype=np.int64)

    def __call__(self, num_frames: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        """(clips, frames) indices in [0, num_frames): (num_clips, clip_len) for dense sampling; for uniform sampling
        (clip_len 1) the num_clips single frames form one clip, (1, num_clips)."""
        if num_frames < 1:
            raise ValueError("a video with no frames cannot be sampled")
        rng = rng if rng is not None else np.random.default_rng()
        starts = self.offsets(num_frames, train, rng)
        idx = starts[:, None] + np.arange(self.clip_len)[None, :] * self.frame_interval
        idx = np.mod(idx, num_frames)
        return idx.reshape(1, -1) if self.clip_len == 1 else idx


@dataclass(frozen=True)
class SeqSegments:
    """``num_segments`` frames, one per segment of [0, num_frames - 1] (``get_seq_frames``); one clip."""

    num_segments: int

    def __post_init__(self):
        if self.num_segments < 1:
            raise ConfigError(f"num_segments must be >= 1, got {self.num_segments}")

    def bounds(self, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive (start, end) of each segment, as the reference computes them in float64."""
        seg = float(num_frames - 1) / self.num_segments
        edges = np.round(seg * np.arange(self.num_segments + 1)).astype(np.int64)
        return edges[:-1], edges[1:]

    def __call__(self, num_frames: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        """(1, num_segments) indices in [0, num_frames)."""
        if num_frames < 1:
            raise ValueError("a video with no frames cannot be sampled")
        start, end = self.bounds(num_frames)
        if train:
            rng = rng if rng is not None else np.random.default_rng()
            return (start + rng.integers(0, end - start + 1)).reshape(1, -1)  # random.randint(start, end)
        return ((start + end) // 2).reshape(1, -1)


def dense(clip_len: int, frame_interval: int, num_clips: int = 1) -> FrameSampler:
    return FrameSampler(clip_len, frame_interval, num_clips)


def uniform(num_frames: int) -> FrameSampler:
    """T segments, one frame each; the T frames form a single clip."""
    return FrameSampler(1, 1, num_frames)


def segments_seq(num_frames: int) -> SeqSegments:
    """T segments with shared boundaries (``frame_uniform=True``); the T frames form a single clip."""
    return SeqSegments(num_frames)

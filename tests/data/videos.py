"""Frames that encode their own index, to check that decoders return exactly the frames asked for."""

from __future__ import annotations

import numpy as np

INDEX_FRAMES = 120


def index_frames(n: int = INDEX_FRAMES, height: int = 48, width: int = 128) -> np.ndarray:
    """Frames whose content is their own index in 8 binary bars: robust to lossy coding."""
    frames = np.zeros((n, height, width, 3), np.uint8)
    for i in range(n):
        for b in range(8):
            if (i >> b) & 1:
                frames[i, :, b * 16 : (b + 1) * 16] = 255
    return frames


def read_index(frame: np.ndarray) -> int:
    """Inverse of ``index_frames`` for a (H, W, 3) or (3, H, W) frame at any size."""
    if frame.shape[0] == 3:
        frame = frame.transpose(1, 2, 0)
    w = frame.shape[1] / 8
    return sum(1 << b for b in range(8) if frame[:, int(b * w + w / 4) : int((b + 1) * w - w / 4)].mean() > 128)

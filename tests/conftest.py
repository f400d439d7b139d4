"""Shared fixtures. Peer models live in peers.py, video helpers in data/videos.py."""

from __future__ import annotations

import os

import pytest
import torch
from peers import SIZE

os.environ.setdefault("VIDAPTER_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def images():
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def video():
    """(B, 3, T, H, W) with B=2, T=4."""
    return torch.randn(2, 3, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(2))

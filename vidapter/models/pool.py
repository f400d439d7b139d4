"""The pretrained attention-pooling head of SigLIP (the MAP head) and Perception Encoder (``attn_pool``).

Multihead attention pooling: Zhai et al., "Scaling Vision Transformers", arXiv 2106.04560; SigLIP arXiv 2303.15343;
PE arXiv 2504.13181. Names are timm's ``AttentionPoolLatent``; checked against timm, open_clip and transformers
(tests/models/test_families.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionPool(nn.Module):
    """One learned query attends to all tokens; then ``x + mlp(norm(x))``. (B, N, D) -> (B, D)."""

    def __init__(self, dim: int, heads: int, hidden: int, act: nn.Module, eps: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} pooling heads")
        self.heads = heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, hidden))
        self.mlp.add_module("act", act)
        self.mlp.add_module("fc2", nn.Linear(hidden, dim))
        nn.init.trunc_normal_(self.latent, std=dim**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) final-normed tokens -> (B, D)."""
        b, n, d = x.shape
        h = self.heads
        q = self.q(self.latent.to(x.dtype)).expand(b, -1, -1).view(b, 1, h, d // h).transpose(1, 2)
        k, v = self.kv(x).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)
        y = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, d))
        y = y + self.mlp(self.norm(y))
        return y[:, 0]

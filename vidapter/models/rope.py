"""2D rotary position embeddings (RoPE) for image ViTs of three families.

RoPE: Su et al., RoFormer, arXiv 2104.09864. The families, each an axial 2D variant (half the rotation pairs take
the row coordinate, half the column coordinate):

- ``"eva02"``: EVA-02, Fang et al., arXiv 2303.11331.
- ``"pe"``: Perception Encoder, Bolya et al., arXiv 2504.13181.
- ``"dinov3"``: DINOv3, Siméoni et al., arXiv 2508.10104.

Checked numerically against timm 1.0.31's implementation (``timm.models.eva.Eva`` with ``RotaryEmbeddingCat`` /
``RotaryEmbeddingDinoV3`` and the rotation its ``EvaAttention`` / ``AttentionRope`` apply to q and k) in
tests/models/test_rope.py. Only the eval-mode, unaugmented tables are built: DINOv3's train-time coordinate
shift / jitter / rescale (off in timm's ``vit_*_dinov3`` definitions anyway) is not supported. As in timm, DINOv3's
periods are fp32; the original checkpoints store them rounded to bf16, so timm and this module differ slightly from
the original DINOv3 code.
"""

from __future__ import annotations

import math

import torch

ROPE_KINDS = ("eva02", "pe", "dinov3")


def _grid(t: torch.Tensor, xy: bool) -> torch.Tensor:
    """Per-axis coordinates (g,) -> (g * g, 2, 1), row-major patches; channel order (row, col), or (col, row) if xy."""
    g = t.shape[0]
    rows, cols = t[:, None].expand(g, g), t[None, :].expand(g, g)
    # The first axis drives the first head_dim/4 frequencies of every head, the second axis the rest.
    return torch.stack((cols, rows) if xy else (rows, cols), dim=-1).reshape(g * g, 2, 1)


def _angles_index(head_dim: int, grid: int, ref_grid: int, offset: float, xy: bool) -> torch.Tensor:
    """EVA-02 / PE: integer positions (+ offset) rescaled onto the reference grid, inverse frequencies 10000^(-j/F)."""
    n = head_dim // 4
    freqs = 1.0 / 10000.0 ** (torch.arange(n, dtype=torch.float32) / n)
    # The pretraining grid spans [0, ref_grid) whatever the input size, so positions stretch rather than extend.
    t = (torch.arange(grid, dtype=torch.float32) + offset) / grid * ref_grid
    return (_grid(t, xy) * freqs).flatten(1)


def _angles_dinov3(head_dim: int, grid: int) -> torch.Tensor:
    """DINOv3: patch centres normalised to [-1, 1], periods 100^(2j/(head_dim/2)), angle 2*pi*coord/period."""
    n = head_dim // 4
    periods = 100.0 ** (2.0 * torch.arange(n, dtype=torch.float32) / (head_dim // 2))
    t = 2.0 * (torch.arange(0.5, grid, dtype=torch.float32) / float(grid)) - 1.0
    # Scale then divide, in this order, so the fp32 angles match the reference bit for bit.
    return (2 * math.pi * _grid(t, xy=False) / periods).flatten(1)


class Rope:
    """Rotary embedding of one ViT family. A plain object, not an ``nn.Module``: it adds nothing to a state dict.

    Args:
        kind: One of ``ROPE_KINDS``.
        head_dim: Per-head channels, a multiple of 4 (two axes, pairs of channels).
        ref_grid: Side of the pretraining patch grid that positions are rescaled onto (timm's ``ref_feat_shape``):
            eva02 16 (B/16-224 and L/14-224), pe 14 (B/16-224) or 24 (L/14-336). Ignored for dinov3, whose
            coordinates are normalised to [-1, 1] at any grid.
        prefix: Tokens before the patches (CLS, registers) that are left unrotated: eva02 1, pe 1, dinov3 1 + 4.
            For pe, whose patches start at coordinate 1, skipping CLS equals rotating it at coordinate 0 (angle 0).
    """

    def __init__(self, kind: str, head_dim: int, ref_grid: int, prefix: int):
        if kind not in ROPE_KINDS:
            raise ValueError(f"unknown RoPE kind {kind!r}, expected one of {ROPE_KINDS}")
        if head_dim % 4:
            raise ValueError(f"head_dim must be a multiple of 4 for 2D RoPE, got {head_dim}")
        self.kind, self.head_dim, self.ref_grid, self.prefix = kind, head_dim, ref_grid, prefix
        # DINOv3 pairs channel j with j + head_dim/2; EVA-02 and PE pair neighbours (2j, 2j+1).
        self.half = kind == "dinov3"
        self._cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, grid: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sine and cosine of the rotation angles for a ``grid`` x ``grid`` patch layout.

        Built in fp32 on the CPU (device-independent numbers, as timm's cached tables), then moved and cached.

        Args:
            grid: Patches per side; patches are row-major, as ``flatten(2)`` of a (B, D, H, W) map.
            device: Where the tables go.

        Returns:
            ``(sin, cos)``, each (grid * grid, head_dim // 2) fp32, one column per rotated channel pair.
        """
        key = (grid, str(torch.device(device) if device is not None else "cpu"))
        # Cached tensors made under inference_mode could never be saved for backward by a later training step.
        if key in self._cache:
            return self._cache[key]
        with torch.inference_mode(False):
            built = self._build(grid, device)
        if type(built[0]) is torch.Tensor:  # not the placeholder tensors of a trace (torch.export), kept by no call
            self._cache[key] = built
        return built

    def _build(self, grid: int, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "dinov3":
            angles = _angles_dinov3(self.head_dim, grid)
        else:
            pe = self.kind == "pe"
            angles = _angles_index(self.head_dim, grid, self.ref_grid, offset=1.0 if pe else 0.0, xy=pe)
        return angles.sin().to(device), angles.cos().to(device)

    def apply(self, x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Rotate the patch tokens of q or k; prefix tokens pass through unchanged.

        Args:
            x: (B, H, N, head_dim) with N = prefix + number of table rows.
            tables: ``(sin, cos)`` from ``tables``, each (N - prefix, head_dim // 2).

        Returns:
            (B, H, N, head_dim) in x's dtype. The rotation runs in the tables' fp32 (type promotion) and is cast back
            once, as timm does.
        """
        sin, cos = tables
        pre, pat = x[..., : self.prefix, :], x[..., self.prefix :, :]
        a, b = pat.chunk(2, dim=-1) if self.half else (pat[..., 0::2], pat[..., 1::2])
        ra, rb = a * cos - b * sin, b * cos + a * sin
        rot = torch.cat((ra, rb), dim=-1) if self.half else torch.stack((ra, rb), dim=-1).flatten(-2)
        return torch.cat((pre, rot.to(x.dtype)), dim=-2)

"""EVL: a frozen image backbone run without gradient, and a light transformer decoder that reads its last layers.

Lin et al., "Frozen CLIP Models are Efficient Video Learners", ECCV 2022, arXiv 2208.03550. Behaviour follows the
official code, OpenGVLab/efficient-video-recognition at b282e8b4 (``model.py``, ``vision_transformer.py``), checked
against a transcription of it in tests/adapters/test_evl.py (tests/reference/evl.py):

- taps: for each of the last M blocks, its output (the residual stream after the MLP, not normalised) and the
  per-head q and k of ``norm1(x)`` before scaling. The backbone runs frame by frame under ``torch.no_grad`` (its
  weights frozen): nothing of it is kept for backward, which is EVL's memory and time claim.
- decoder layer i reads frame features ``F = out_i + TConv_i(out_i) + P_i + X_i`` of all T x N tokens (class tokens
  included): ``TConv_i`` a depthwise Conv1d(k=3, padding 1) along T with bias (PyTorch's default init, not zero),
  ``P_i`` a temporal position embedding (T, D) (zeros), and ``X_i`` the cross-frame term of patch tokens: the frozen
  attention map between frame t's queries and frame t-1's keys (softmax over keys, mean over heads) weights a learned
  table ``w1`` of relative spatial offsets, and likewise t+1 with ``w2`` (both zeros; the class-token row gets 0,
  frame 0 no "previous" term, frame T-1 no "next" term). On other image families the class token and any registers
  get 0, and q and k are the ones the frozen attention used (rotated where the family has RoPE).
- decoder layer: ``x += MHA(norm1 x, norm3 F, norm3 F)``; ``x += MLP(norm2 x)`` with QuickGELU and dropout 0.5 before
  fc2; attention and MLP weights xavier-uniform, attention biases 0, MLP biases N(0, 1e-6). The query is one token,
  zeros.
- head (``norm`` here, ``proj`` there): LayerNorm -> dropout 0.5 -> Linear, PyTorch's default init.
- trainable: the decoder and the head; the image weights, its final norm included, stay frozen and unused past the
  taps (EVL reads no final norm).

Names are the official ones under ``decoder.`` (``cls_token``, ``decoder_layers.{i}.{attn.{q,k,v,out}_proj,
mlp.{fc1,fc2},norm1,norm2,norm3}``, ``temporal_conv.{i}``, ``temporal_pos_embed.{i}``, ``cross_attention.{i}.{w1,w2}``);
the head's LayerNorm is ``decoder.norm`` (``proj.0``) and its Linear ``head.fc`` (``proj.2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidapter.adapters.aim import AIM
from vidapter.adapters.registry import AdapterModule, Method, Official, register_method
from vidapter.errors import ConfigError
from vidapter.models.convert import evl_official_to_vidapter
from vidapter.models.vit import Block, LayerNorm, QuickGELU, VisionTransformer


class CrossFrameTerm(nn.Module):
    """The cross-frame term X (official ``TemporalCrossAttention``): learned tables of relative offsets, weighted by
    the frozen attention maps between neighbouring frames."""

    def __init__(self, grid: int, dim: int, prefix: int = 1):
        super().__init__()
        self.grid, self.prefix = grid, prefix  # prefix: tokens before the patches (class token, registers)
        self.w1 = nn.Parameter(torch.zeros((2 * grid - 1) ** 2, dim))  # previous frame
        self.w2 = nn.Parameter(torch.zeros((2 * grid - 1) ** 2, dim))  # next frame
        i = torch.arange(grid * grid)
        qi, qj, ki, kj = i[:, None] // grid, i[:, None] % grid, i[None] // grid, i[None] % grid
        self.register_buffer("offsets", (qi - ki + grid - 1) * (2 * grid - 1) + (qj - kj + grid - 1), persistent=False)

    def _half(self, q: torch.Tensor, k: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """q, k (B, T', N, H, hd) of two frame ranges -> (B, T', N - prefix, D) for the patch tokens."""
        q, k = q[:, :, self.prefix :], k[:, :, self.prefix :]
        attn = torch.einsum("btqhd,btkhd->btqkh", q / q.shape[-1] ** 0.5, k).softmax(dim=-2).mean(dim=-1)
        return torch.einsum("btqk,qkc->btqc", attn, table[self.offsets])

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """q, k (B, T, N, H, hd) -> (B, T, N, D)."""
        b, t, n = q.shape[:3]
        p = self.prefix
        if n != self.grid**2 + p:
            raise ValueError(f"EVL's cross-frame term was built for a {self.grid}x{self.grid} grid, got {n} tokens")
        out = q.new_zeros(b, t, n, self.w1.shape[1], dtype=self.w1.dtype)
        out[:, 1:, p:] += self._half(q[:, 1:], k[:, :-1], self.w1)
        out[:, :-1, p:] += self._half(q[:, :-1], k[:, 1:], self.w2)
        return out


class DecoderAttention(nn.Module):
    """Multi-head attention with separate q, k, v projections (queries attend to a memory of other tokens)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        for m in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """x (B, Lq, D), memory (B, Lm, D) -> (B, Lq, D)."""
        split = "b l (h c) -> b h l c"
        q = rearrange(self.q_proj(x), split, h=self.heads)
        k = rearrange(self.k_proj(memory), split, h=self.heads)
        v = rearrange(self.v_proj(memory), split, h=self.heads)
        return self.out_proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h l c -> b l (h c)"))


class DecoderLayer(nn.Module):
    """``x += attn(norm1 x, norm3 memory)``; ``x += mlp(norm2 x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, mlp_dropout: float = 0.5):
        super().__init__()
        self.attn = DecoderAttention(dim, heads)
        hidden = round(mlp_ratio * dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, hidden))
        self.mlp.add_module("act", QuickGELU())
        self.mlp.add_module("dropout", nn.Dropout(mlp_dropout))
        self.mlp.add_module("fc2", nn.Linear(hidden, dim))
        for m in (self.mlp.fc1, self.mlp.fc2):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=1e-6)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(dim, 1e-5, fp32=True) for _ in range(3))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), self.norm3(memory))
        return x + self.mlp(self.norm2(x))


class EVLDecoder(AdapterModule, nn.Module):
    """The query, M decoder layers with their temporal modules, and the head's LayerNorm."""

    def __init__(self, dim: int, heads: int, num_frames: int, grid: int, num_layers: int = 4, mlp_dropout: float = 0.5,
                 prefix: int = 1):  # fmt: skip
        super().__init__()
        self.num_frames = num_frames
        self.decoder_layers = nn.ModuleList(DecoderLayer(dim, heads, 4.0, mlp_dropout) for _ in range(num_layers))
        self.temporal_conv = nn.ModuleList(nn.Conv1d(dim, dim, 3, padding=1, groups=dim) for _ in range(num_layers))
        self.temporal_pos_embed = nn.ParameterList(
            nn.Parameter(torch.zeros(num_frames, dim)) for _ in range(num_layers)
        )
        self.cross_attention = nn.ModuleList(CrossFrameTerm(grid, dim, prefix) for _ in range(num_layers))
        self.cls_token = nn.Parameter(torch.zeros(dim))
        self.norm = nn.LayerNorm(dim)

    @property
    def num_layers(self) -> int:
        return len(self.decoder_layers)

    def forward(self, taps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """taps: per decoder layer (out (B, T, N, D), q and k (B, T, N, H, hd)) -> (B, D), the normed query."""
        if len(taps) != self.num_layers:
            raise ValueError(f"EVL decoder has {self.num_layers} layers, got {len(taps)} tapped blocks")
        b, t, n, d = taps[0][0].shape
        if t != self.num_frames:
            raise ValueError(f"EVL decoder was built for T={self.num_frames}, got {t} frames")
        x = self.cls_token.view(1, 1, d).repeat(b, 1, 1)
        for i, (out, q, k) in enumerate(taps):
            conv = self.temporal_conv[i](rearrange(out, "b t n d -> (b n) d t"))
            feats = out + rearrange(conv, "(b n) d t -> b t n d", b=b) + self.temporal_pos_embed[i].view(1, t, 1, d)
            feats = feats + self.cross_attention[i](q, k)
            x = self.decoder_layers[i](x, rearrange(feats, "b t n d -> b (t n) d"))
        return self.norm(x[:, 0])


def tapped_forward(vit: VisionTransformer, x: torch.Tensor, num_frames: int, taps: int) -> list[tuple]:
    """Run the blocks of ``vit`` on embedded, pre-normed tokens x (B*T, N, D); for the last ``taps`` blocks return
    (output (B, T, N, D), q and k of norm1(input) (B, T, N, H, hd), unscaled), in fp32."""
    depth = len(vit.blocks)
    if not 0 < taps <= depth:
        raise ValueError(f"EVL reads 1 to {depth} blocks of this backbone, got {taps}")
    found = []
    for i, blk in enumerate(vit.blocks):
        if i < depth - taps:
            x = blk(x, num_frames)
            continue
        x, q, k = _block_with_qk(blk, x, num_frames)
        found.append(tuple(rearrange(v.float(), "(b t) ... -> b t ...", t=num_frames) for v in (x, q, k)))
    return found


def _block_with_qk(blk: Block, x: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, ...]:
    """The plain block's forward (``Block.forward``), also returning q and k as (B*T, N, H, hd)."""
    q, k, v = blk.attn.project(blk.norm1(x))
    x = x + blk.ls1(blk.attn.attend(q, k, v, num_frames=num_frames))
    x = x + blk.ls2(blk.mlp(blk.norm2(x), normed_from=(blk.norm2, x)))
    return x, q.transpose(1, 2), k.transpose(1, 2)


def apply_evl(vit: VisionTransformer, *, num_frames: int, num_layers: int = 4, mlp_dropout: float = 0.5) -> EVLDecoder:
    """EVL's decoder for ``vit`` at T = ``num_frames``, reading its last ``num_layers`` blocks (the model holds it as
    ``decoder``; the backbone is left as it is)."""
    if not 0 < num_layers <= len(vit.blocks):
        raise ConfigError(f"model.evl.layers must be 1 to {len(vit.blocks)} for this backbone, got {num_layers}")
    return EVLDecoder(vit.width, vit.facts.heads, num_frames, vit.grid, num_layers, mlp_dropout, vit.num_prefix)


def _shape_from_official(cfg, sd: dict) -> None:
    """An EVL release fixes classes, frames and decoder depth (one temporal position embedding per layer)."""
    AIM.official[0].shape(cfg, sd)
    cfg.num_frames = sd["decoder.temporal_pos_embed.0"].shape[0]
    cfg.evl.layers = sum(k.startswith("decoder.temporal_pos_embed.") for k in sd)


@dataclass
class EVLConfig:
    """``model.evl``: the official ViT-B/16 8-frame model's decoder by default."""

    layers: int = 4  # decoder layers, reading the last this many blocks


EVL = register_method(Method(
    name="evl",
    paper="EVL: Lin et al., ECCV 2022 (arXiv 2208.03550)",
    trains="a transformer decoder over the last blocks' features (backbone without gradient), head",
    adapt=lambda vit, cfg, layers: apply_evl(vit, num_frames=cfg.num_frames, num_layers=cfg.evl.layers),
    readout="decoder",
    temporal_embed=lambda cfg: False,
    train_norm=False,
    head_std=None,
    per_layer=False,
    settings=lambda cfg: f"decoder of {cfg.evl.layers} layers on the last {cfg.evl.layers} blocks, backbone without "
                         "gradient",
    official=(Official("evl-official", "evl_official", evl_official_to_vidapter, False, _shape_from_official),),
    config=EVLConfig,
    identity_at_init=True,
))  # fmt: skip

"""ZeroI2V: linear adapters at four places of a frozen image block, mergeable into its weights after training, with
the spatio-temporal dual-headed attention (adapters/stdha.py) for time; zero extra cost at inference.

Li, Zhu, Wang, "ZeroI2V: Zero-Cost Adaptation of Pre-trained Transformers from Image to Video", ECCV 2024, arXiv
2310.01324. Behaviour follows the official code, MCG-NJU/ZeroI2V at f091983e
(``mmaction/models/backbones/vit_zero_clip.py``, ``tools/weight_reparam.py``), checked against a transcription of it
in tests/adapters/test_zeroi2v.py (tests/reference/zeroi2v.py):

- linear adapter: ``A(x) = x + s * fc2(dropout(fc1(x)))``, **no activation**, hidden ``int(D * ratio)`` (192 on
  ViT-B, 256 on ViT-L), dropout 0.1 by default; fc1/fc2 trunc-normal 0.02 with zero biases, then fc2 zeroed: the
  identity at initialisation.
- block: ``x + S(attn(T_in(norm1 x)))`` (``T_in`` before the fused qkv, one adapter shared by q, k and v; ``S``
  after the output projection; STDHA shifts chosen heads' keys and values in time); then
  ``x + MLP_out(mlp(MLP(norm2 x)))`` with ``num_tadapter=2`` (every shipped config), ``x + mlp(MLP(norm2 x))`` with 1.
  No drop-path.
- the rest is AIM's: a temporal embedding (zeros) before the pre-norm, per-frame class tokens through the final
  norm, mean over T, dropout 0.5, Linear with N(0, 0.01^2); trainable: adapters, temporal embedding, final norm, head.

Merging (``merge_zeroi2v_``): each adapter is the affine map ``M x + c`` with ``M = I + s W2 W1`` and
``c = s (W2 b1 + b2)`` at evaluation; ``T_in`` and ``MLP`` fold into the layer they feed (``W M``, ``W c + b``), ``S``
and ``MLP_out`` into the layer that feeds them (``M W``, ``M b + c``). The time shift acts on k and v after the
token-wise qkv projection, so folding ``T_in`` into qkv commutes with it. The merged block is the plain image block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidapter.adapters.aim import AIM
from vidapter.adapters.registry import AdapterModule, Method, Official, register_method
from vidapter.errors import ConfigError
from vidapter.models.convert import zeroi2v_official_to_vidapter
from vidapter.models.vit import Block, Linear, VisionTransformer


class LinearAdapter(AdapterModule, nn.Module):
    """``x + scale * fc2(dropout(fc1(x)))``, (..., D) -> (..., D); no activation."""

    def __init__(self, dim: int, ratio: float = 0.25, scale: float = 1.0, dropout: float = 0.1):
        super().__init__()
        hidden = int(dim * ratio)
        if hidden < 1:
            raise ConfigError(f"adapter ratio {ratio} leaves no hidden units for width {dim}")
        self.scale = float(scale)
        self.fc1 = Linear(dim, hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = Linear(hidden, dim)
        nn.init.trunc_normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.dropout(self.fc1(x))) * self.scale

    @torch.no_grad()
    def affine(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, c) with ``A(x) = M x + c`` at evaluation: ``M = I + s W2 W1`` (D, D), ``c = s (W2 b1 + b2)`` (D,)."""
        w1, b1 = self.fc1.weight.to(dtype), self.fc1.bias.to(dtype)
        w2, b2 = self.fc2.weight.to(dtype), self.fc2.bias.to(dtype)
        eye = torch.eye(w1.shape[1], dtype=dtype, device=w1.device)
        return eye + self.scale * (w2 @ w1), self.scale * (w2 @ b1 + b2)


class ZeroI2VBlock(nn.Module):
    """A frozen image block with ZeroI2V's linear adapters; heads shift in time through ``stdha.ShiftedAttention``."""

    def __init__(self, block: Block, dim: int, *, ratio: float = 0.25, scale: float = 0.5, num_tadapter: int = 2,
                 dropout: float = 0.1):  # fmt: skip
        super().__init__()
        if num_tadapter not in (1, 2):
            raise ConfigError(f"num_tadapter must be 1 or 2, got {num_tadapter}")
        self.norm1, self.attn, self.norm2, self.mlp = block.norm1, block.attn, block.norm2, block.mlp
        self.ls1, self.ls2 = block.ls1, block.ls2
        self.t_adapter_in = LinearAdapter(dim, ratio, scale, dropout)
        self.s_adapter = LinearAdapter(dim, ratio, scale, dropout)
        self.mlp_adapter = LinearAdapter(dim, ratio, scale, dropout)
        self.mlp_adapter_out = LinearAdapter(dim, ratio, scale, dropout) if num_tadapter == 2 else None

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D); frames of one video consecutive."""
        x = x + self.ls1(self.s_adapter(self.attn(self.t_adapter_in(self.norm1(x)), num_frames=num_frames)))
        h = self.mlp(self.mlp_adapter(self.norm2(x)))
        return x + self.ls2(self.mlp_adapter_out(h) if self.mlp_adapter_out is not None else h)

    @torch.no_grad()
    def merged(self) -> Block:
        """The plain image block that computes what this block computes at evaluation (weights summed in float64)."""
        _fold(self.attn.qkv, self.t_adapter_in, before=True)
        _fold(self.attn.proj, self.s_adapter, before=False)
        for layer in self.mlp.inputs():
            _fold(layer, self.mlp_adapter, before=True)
        if self.mlp_adapter_out is not None:
            _fold(self.mlp.fc2, self.mlp_adapter_out, before=False)
        return Block.from_parts(self.norm1, self.attn, self.norm2, self.mlp, self.ls1, self.ls2)


def _fold(layer: Linear, adapter: LinearAdapter, before: bool) -> None:
    """Fold the affine adapter ``A(x) = M x + c`` into ``layer`` (weight W, bias b), summed in float64:
    ``before`` (layer(A(x)) = W M x + W c + b) or after (A(layer(x)) = M W x + M b + c)."""
    m, c = adapter.affine()
    w, b = layer.weight.to(m.dtype), layer.bias.to(m.dtype)
    weight, bias = (w @ m, w @ c + b) if before else (m @ w, m @ b + c)  # both before either is written
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)


def apply_zeroi2v(
    vit: VisionTransformer,
    *,
    ratio: float = 0.25,
    scale: float = 0.5,
    num_tadapter: int = 2,
    dropout: float = 0.1,
    layers: list[int] | None = None,
) -> list[int]:
    """Replace the blocks of ``vit`` (or ``layers``) in place by ZeroI2V blocks; returns the adapted indices. The time
    shifts are set apart (``apply_stdha``): they need no parameter and survive merging."""
    chosen = list(range(len(vit.blocks))) if layers is None else layers
    for i in chosen:
        vit.blocks[i] = ZeroI2VBlock(vit.blocks[i], vit.width, ratio=ratio, scale=scale, num_tadapter=num_tadapter,
                                     dropout=dropout)  # fmt: skip
    return chosen


@torch.no_grad()
def merge_zeroi2v_(vit: VisionTransformer) -> int:
    """Fold every ZeroI2V block's adapters into its frozen weights and put the plain block back, in place; returns how
    many blocks were merged."""
    merged = 0
    for i, blk in enumerate(vit.blocks):
        if isinstance(blk, ZeroI2VBlock):
            vit.blocks[i] = blk.merged()
            merged += 1
    return merged


def _shape_from_official(cfg, sd: dict) -> None:
    """A ZeroI2V release fixes classes, frames and its number of temporal adapters; a merged release (plain blocks,
    the head shifts only) is an AIM model without adapters."""
    AIM.official[0].shape(cfg, sd)
    if not any(".t_adapter_in." in k for k in sd):
        cfg.method, cfg.adapters, cfg.temporal_embed = AIM.name, [], True  # merged: plain blocks + time shifts
    else:
        cfg.zeroi2v.num_tadapter = 2 if any(".mlp_adapter_out." in k for k in sd) else 1


@dataclass
class ZeroI2VConfig:
    """``model.zeroi2v``: its linear adapters (the official ViT-B K400 config's values by default)."""

    ratio: float = 0.25  # bottleneck ratio
    scale: float = 0.5  # scale of the adapters' branches
    num_tadapter: int = 1  # 1: adapters before attention, after attention and beside the MLP; 2: one more after it
    dropout: float = 0.1  # adapter dropout

    def __post_init__(self):
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"model.zeroi2v.ratio must be in (0, 1], got {self.ratio}")
        if self.num_tadapter not in (1, 2):
            raise ConfigError(f"model.zeroi2v.num_tadapter must be 1 or 2, got {self.num_tadapter}")


def _adapt(vit: VisionTransformer, cfg, layers: list[int]) -> None:
    z = cfg.zeroi2v
    apply_zeroi2v(vit, ratio=z.ratio, scale=z.scale, num_tadapter=z.num_tadapter, dropout=z.dropout, layers=layers)


ZEROI2V = register_method(Method(
    name="zeroi2v",
    paper="ZeroI2V: Li et al., ECCV 2024 (arXiv 2310.01324)",
    trains="linear adapters around attention and MLP (mergeable), temporal embedding, final norm, head",
    adapt=_adapt,
    merge=lambda model: merge_zeroi2v_(model.backbone),
    settings=lambda cfg: f"linear adapters x{2 + cfg.zeroi2v.num_tadapter} per block, ratio {cfg.zeroi2v.ratio:g}, "
                         f"scale {cfg.zeroi2v.scale:g}, dropout {cfg.zeroi2v.dropout:g} (mergeable)",
    official=(Official("zeroi2v-official", "aim_official", zeroi2v_official_to_vidapter, True, _shape_from_official),),
    config=ZeroI2VConfig,
    identity_at_init=True,
))  # fmt: skip

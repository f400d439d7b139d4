"""AIM: spatial, temporal and joint adapters around a frozen image ViT block.

Yang et al., "AIM: Adapting Image Models for Efficient Video Action Recognition", ICLR 2023, arXiv 2302.03024.
Behaviour follows the reference code (docs/model.md), checked against a line-by-line transcription of its
``ViT_CLIP`` block (github.com/taoyang1122/adapt-image-models) in tests/adapters/test_aim_reference.py.

Injection keeps the backbone's parameter names: ``blocks.{i}.norm1`` stays ``blocks.{i}.norm1``; the adapters add
``blocks.{i}.{s_adapter,t_adapter_in,t_adapter,mlp_adapter}.{fc1,fc2}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from vidapter.adapters.registry import AdapterModule, Method, Official, register_method
from vidapter.errors import ConfigError
from vidapter.models import lean
from vidapter.models.convert import aim_official_to_vidapter
from vidapter.models.vit import Attention, Block, LayerNorm, Linear, VisionTransformer, norm_source

ADAPTER_KINDS = ("spatial", "temporal", "joint")


class Adapter(AdapterModule, lean.Lean, nn.Module):
    """Bottleneck adapter: Linear(D, D*ratio) -> GELU (erf) -> Linear(D*ratio, D), plus x when ``skip``.

    The second projection starts at zero, so a skip adapter starts as the identity and a no-skip adapter as zero.
    With ``recompute`` (vit.set_recompute) backward keeps the input and the pre-activation, not GELU's output, and
    nothing of an input that a LayerNorm made (``normed_from``): both are recomputed elementwise, gradients unchanged.
    """

    def __init__(self, dim: int, ratio: float = 0.25, skip: bool = True):
        super().__init__()
        hidden = int(dim * ratio)
        if hidden < 1:
            raise ConfigError(f"adapter ratio {ratio} leaves no hidden units for width {dim}")
        self.skip = skip
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, dim)
        nn.init.trunc_normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor, normed_from: tuple[LayerNorm, torch.Tensor] | None = None) -> torch.Tensor:
        """(..., D) -> (..., D). ``normed_from=(norm, src)`` says that x is ``norm(src)``."""
        w1, b1, w2, b2 = self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias
        if self.recompute and x.is_contiguous() and lean.needs_graph(x, w1, b1, w2, b2):
            source = norm_source(normed_from)
            h = lean.NormLinear.apply(*source, x, w1, b1) if source else lean.Linear.apply(x, w1, b1)
            y = lean.GeluLinear.apply(h, w2, b2)
        else:
            y = self.fc2(self.act(self.fc1(x)))
        return x + y if self.skip else y


class DropPath(nn.Module):
    """Stochastic depth per sample (first dimension), scaled by 1/keep in training; identity in eval.

    timm's ``drop_path`` (the reference's), bit for bit: the mask is divided by keep, then multiplies x once.
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"drop-path rate must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * (mask.div_(keep) if keep > 0 else mask)

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


class AIMBlock(nn.Module):
    """A frozen image block with AIM's adapters. Adapters not in ``kinds`` are absent (ablations, Table 1).

    Temporal pass: the block's own ``norm1``/``attn`` run along T for every token, then T_Adapter (no skip). Its
    attention over T tokens uses explicit products where ``temporal_math`` is True, SDPA where False, and by default
    (None) explicit products on CUDA and SDPA elsewhere, each the faster there (docs/benchmarks.md: an H200's compiled
    train step 2.24x the reference with products, 1.86x with SDPA; the CPU's 1.02-1.03x with products, 1.08x SDPA).
    With products and ``temporal_frames``, a compiled block runs the temporal pass in the frame layout
    (``over_frames``): no regrouping copies, no batched 8x8 GEMMs.
    Spatial pass: ``x + S_Adapter(attn(norm1(x)))``. Joint: ``x + mlp(xn) + drop_path(scale * MLP_Adapter(xn))``.

    Other image families: LayerScale (DINOv2/v3) stays with the frozen branch and every adapter sits outside it, so
    an adapter's update is not shrunk by gamma (small in trained models): ``S_Adapter(ls1(attn(.)))``,
    ``T_Adapter(ls1(attn_t(.)))``, ``ls2(mlp(xn)) + scale * MLP_Adapter(xn)``. Rotary positions (EVA02, PE, DINOv3)
    rotate the spatial pass only: the temporal pass attends among the T frames of one spatial position, where the
    rotation is the same for every token and cancels in q.k. Registers and storage tokens take part in the temporal
    pass like any token (each attends to itself across frames).
    """

    temporal_math: bool | None = None
    temporal_frames = False

    def __init__(
        self,
        block: Block,
        dim: int,
        *,
        kinds: tuple[str, ...] = ADAPTER_KINDS,
        ratio: float = 0.25,
        scale: float = 0.5,
        num_tadapter: int = 1,
        drop_path: float = 0.0,
    ):
        super().__init__()
        unknown = set(kinds) - set(ADAPTER_KINDS)
        if unknown:
            raise ConfigError(f"unknown adapter kinds {sorted(unknown)}; allowed: {ADAPTER_KINDS}")
        if num_tadapter not in (1, 2):
            raise ConfigError(f"num_tadapter must be 1 or 2, got {num_tadapter}")
        self.norm1, self.attn, self.norm2, self.mlp = block.norm1, block.attn, block.norm2, block.mlp
        self.ls1, self.ls2 = block.ls1, block.ls2
        self.scale = scale
        self.s_adapter = Adapter(dim, ratio, skip=True) if "spatial" in kinds else None
        temporal = "temporal" in kinds
        self.t_adapter_in = Adapter(dim, ratio, skip=True) if temporal and num_tadapter == 2 else None
        self.t_adapter = Adapter(dim, ratio, skip=False) if temporal else None
        self.mlp_adapter = Adapter(dim, ratio, skip=False) if "joint" in kinds else None
        self.drop_path = DropPath(drop_path)

    def adapter_names(self) -> list[str]:
        """Names of this block's adapter submodules, in the reference's order."""
        names = ("t_adapter_in", "t_adapter", "s_adapter", "mlp_adapter")
        return [n for n in names if getattr(self, n) is not None]

    def _temporal(self, x: torch.Tensor, attend) -> torch.Tensor:
        """T_Adapter(ls1(attend(T_Adapter_in(norm1(x))))): token by token but for ``attend``, so in either layout."""
        xt = self.norm1(x)
        if self.t_adapter_in is not None:
            xt = self.t_adapter_in(xt, normed_from=(self.norm1, x))
        return self.t_adapter(self.ls1(attend(xt)))

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D); frames of one video are consecutive along the first axis."""
        if self.t_adapter is not None:
            if num_frames is None:
                raise ValueError("AIMBlock with a temporal adapter needs num_frames")
            products = x.is_cuda if self.temporal_math is None else self.temporal_math
            if products and self.temporal_frames and torch.compiler.is_compiling():
                x = x + self.drop_path(self._temporal(x, lambda xt: over_frames(self.attn, xt, num_frames)))
            else:
                n = x.shape[1]
                xt = rearrange(x, "(b t) n d -> (b n) t d", t=num_frames)
                xt = self._temporal(xt, lambda xt: self.attn(xt, math=products, spatial=False))
                x = x + self.drop_path(rearrange(xt, "(b n) t d -> (b t) n d", n=n))
        y = self.ls1(self.attn(self.norm1(x), num_frames=num_frames))
        x = x + (self.s_adapter(y) if self.s_adapter is not None else y)
        xn = self.norm2(x)
        normed_from = (self.norm2, x)
        if self.mlp_adapter is None:
            return x + self.ls2(self.mlp(xn, normed_from))
        mlp, adapter = self.ls2(self.mlp(xn, normed_from)), self.mlp_adapter(xn, normed_from)
        return x + mlp + self.drop_path(self.scale * adapter)


def over_frames(attn: Attention, x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B*T, N, D) -> (B*T, N, D): ``attn`` among the T frames of each token position, read in the frame layout:
    AIM's temporal pass (``AIMBlock.temporal_frames``).

    The same function as ``attn`` on ``(b t) n d -> (b n) t d`` regrouped tokens, without the regrouping: the
    projections work token by token in any order, and the attention is broadcast multiply-and-sum over strided
    views (fp32 scores and softmax, as ``math=True``), which torch.compile fuses into memory-bound kernels with
    no layout copy. Eager would materialise B x T x T x N x D products: meant to run compiled.
    """
    bt, n, d = x.shape
    qkv = attn.qkv(x).view(bt // frames, frames, n, 3, attn.heads, d // attn.heads)
    q, k, v = qkv.unbind(3)  # (B, T, N, H, hd) each
    # Summed in fp32: compiled, the products are fp32 too (inductor computes low-precision inputs in fp32) and no
    # fp32 copy of q, k or v is written, which .float() on them would make the compiler do.
    scores = (q.unsqueeze(2) * k.unsqueeze(1)).sum(-1, dtype=torch.float32) * q.shape[-1] ** -0.5  # (B,Tq,Tk,N,H)
    out = (torch.softmax(scores, dim=2).unsqueeze(-1) * v.unsqueeze(1)).sum(2)  # (B, T, N, H, hd)
    return attn.proj(attn.norm(out.to(qkv.dtype).reshape(bt, n, d)))


TEMPORAL_ATTENTION = ("auto", "sdpa", "products", "frames")


def check_temporal_attention(mode: str) -> None:
    if mode not in TEMPORAL_ATTENTION:
        raise ConfigError(f"model.temporal_attention must be one of {', '.join(TEMPORAL_ATTENTION)}, got {mode!r}")


def set_temporal_attention(model: nn.Module, mode: str) -> None:
    """How every AIM block computes its temporal pass's attention; the same function every way, up to rounding.

    ``sdpa``: SDPA on tokens regrouped to (B*N, T, D). ``products``: explicit batched GEMMs and an fp32 softmax there.
    ``frames``: compiled, broadcast products read straight from the frame layout (``over_frames``: no
    regrouping copies, no 8x8 GEMMs); eager, ``products``. ``auto``: products on CUDA, SDPA elsewhere.
    """
    check_temporal_attention(mode)
    for blk in model.modules():
        if isinstance(blk, AIMBlock):
            blk.temporal_math = {"auto": None, "sdpa": False}.get(mode, True)
            blk.temporal_frames = mode == "frames"


def resolve_layers(layers: str, depth: int) -> list[int]:
    """Which layers carry adapters (Table 7): "all", "bottom:K", "top:K", "every_other" (0, 2, 4, ...), or "0,3,5"."""
    if layers == "all":
        return list(range(depth))
    if layers == "every_other":
        return list(range(0, depth, 2))
    kind, _, k = layers.partition(":")
    if kind in ("bottom", "top") and k.isdigit() and 0 < int(k) <= depth:
        return list(range(int(k))) if kind == "bottom" else list(range(depth - int(k), depth))
    parts = [p.strip() for p in layers.split(",")]
    if all(p.isdigit() and int(p) < depth for p in parts):
        return sorted({int(p) for p in parts})
    raise ConfigError(
        f"adapter layers {layers!r} not understood for depth {depth}; use 'all', 'bottom:K', 'top:K' (1<=K<={depth}), "
        "'every_other' or a comma list of indices"
    )


def apply_aim(
    vit: VisionTransformer,
    *,
    kinds: tuple[str, ...] = ADAPTER_KINDS,
    layers: str = "all",
    ratio: float = 0.25,
    scale: float = 0.5,
    num_tadapter: int = 1,
    drop_path_rate: float = 0.2,
) -> list[int]:
    """Replace the chosen blocks of ``vit`` in place by AIM blocks; returns the adapted layer indices.

    Layer i gets drop-path rate ``linspace(0, drop_path_rate, depth)[i]``, applied to the temporal branch and the
    MLP adapter only. Layers left out stay plain frozen image blocks. With no adapter kinds nothing changes.
    """
    depth = len(vit.blocks)
    chosen = resolve_layers(layers, depth) if kinds else []
    rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
    for i in chosen:
        blk = vit.blocks[i]
        vit.blocks[i] = AIMBlock(
            blk, vit.width, kinds=kinds, ratio=ratio, scale=scale, num_tadapter=num_tadapter, drop_path=rates[i]
        )
    return chosen


@dataclass
class AIMConfig:
    """``model.aim``: the sizes of AIM's adapters, for every method that places them (``model.adapters``)."""

    ratio: float = 0.25  # adapter bottleneck ratio (Table 8)
    scale: float = 0.5  # s, the MLP adapter's scale: 0.5 Kinetics/Diving-48, 1.0 SSv2
    num_tadapter: int = 1  # 2 on SSv2: an extra skip adapter before the temporal attention

    def __post_init__(self):
        if not 0 < self.ratio <= 1:
            raise ConfigError(f"model.aim.ratio must be in (0, 1], got {self.ratio}")
        if self.num_tadapter not in (1, 2):
            raise ConfigError(f"model.aim.num_tadapter must be 1 or 2, got {self.num_tadapter}")


def _shape_from_official(cfg, sd: dict) -> None:
    """An AIM release fixes its classes and frames (the temporal embedding's length)."""
    cfg.num_classes = sd["head.fc.weight"].shape[0]
    if "temporal_embed" in sd:
        cfg.num_frames = sd["temporal_embed"].shape[1]


# AIM's adapters are ``model.adapters``: the builder adds them for every method that combines with them (this one,
# LoRA), so AIM's own step adds nothing more. Its temporal embedding comes with its adapters: the space-only rows of
# Table 1 (no adapters) have none.
AIM = register_method(Method(
    name="aim",
    paper="AIM: Yang et al., ICLR 2023 (arXiv 2302.03024)",
    trains="spatial, temporal and joint adapters (model.adapters), temporal embedding, final norm, head",
    adapt=lambda vit, cfg, layers: None,
    temporal_embed=lambda cfg: bool(cfg.adapters),
    combines_aim=True,
    official=(Official("aim-official", "aim_official", aim_official_to_vidapter, True, _shape_from_official),),
    config=AIMConfig,
    identity_at_init=True,
))  # fmt: skip

"""A plain image Vision Transformer with timm's parameter names.

ViT: Dosovitskiy et al., arXiv 2010.11929. CLIP image tower: Radford et al., arXiv 2103.00020.
Checked numerically against open_clip's ``VisionTransformer``, transformers' ``CLIPVisionModel`` and timm's
``VisionTransformer`` (tests/models/test_vit.py).

Every architecture fact (activation, LayerNorm eps and precision, pre-norm, patch bias, input mean/std) lives in one
table, ``BACKBONES``; a model is built from a named row, never guessed from a layer count or a file name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidapter.models import lean

CLIP_MEAN = (122.77, 116.75, 104.09)
CLIP_STD = (68.50, 66.63, 70.32)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ViTFacts:
    """Architecture facts of one image backbone. Mean/std are on the 0-255 scale, as the reference configs."""

    width: int
    depth: int
    heads: int
    patch_size: int
    image_size: int
    act: str  # "quick_gelu" (OpenAI CLIP) or "gelu" (exact erf GELU, timm/IN-21K)
    ln_eps: float
    ln_fp32: bool  # CLIP computes LayerNorm in fp32 whatever the input dtype
    pre_norm: bool  # CLIP's ln_pre after the embeddings
    patch_bias: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mlp_ratio: float = 4.0
    layout: str = "openai"  # the key names of the family's original release: "openai" (CLIP) or "timm"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + 1


def _clip(width: int, depth: int, heads: int, patch: int, size: int = 224) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "quick_gelu", 1e-5, True, True, False, CLIP_MEAN, CLIP_STD)


def _timm_in21k(width: int, depth: int, heads: int, patch: int, size: int = 224) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-6, False, False, True, IMAGENET_MEAN, IMAGENET_STD,
                    layout="timm")  # fmt: skip


BACKBONES: dict[str, ViTFacts] = {
    "clip_vitb32": _clip(768, 12, 12, 32),
    "clip_vitb16": _clip(768, 12, 12, 16),
    "clip_vitl14": _clip(1024, 24, 16, 14),
    "clip_vitl14_336": _clip(1024, 24, 16, 14, 336),
    "in21k_vitb16": _timm_in21k(768, 12, 12, 16),
    # Tiny variants for tests and the demo: the same code paths, far fewer parameters.
    "demo_vit": _clip(96, 4, 3, 8, 32),  # pretrained by vidapter on synthetic images (vidapter/demo/pretrain.py)
    "tiny_clip": _clip(64, 2, 4, 8, 32),
    "tiny_in21k": _timm_in21k(64, 2, 4, 8, 32),
}


RECOMPUTE_MODES = ("none", "pointwise", "mlp")


class QuickGELU(lean.Lean, nn.Module):
    """CLIP's activation: x * sigmoid(1.702 x). With ``recompute``, backward keeps x (plain autograd: two tensors)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and lean.needs_graph(x):
            return lean.QuickGELU.apply(x)
        return lean.quick_gelu(x)


class Linear(lean.Lean, nn.Linear):
    """nn.Linear whose backward, with ``recompute``, keeps no copy of a frozen weight (and, like autograd, no input).

    A trained weight that autocast casts takes the plain path: autocast casts it once per forward and sums the
    gradients of all its uses (the temporal and spatial passes share ``attn``) in that dtype, which a per-call
    function cannot reproduce bit for bit.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delta: nn.Module | None = None  # a trained module whose output is added (LoRA: adapters/lora.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        lean_path = self.recompute and x.is_contiguous() and lean.needs_graph(x, w, self.bias)
        if lean_path and (not w.requires_grad or lean.compute_dtype(x) == w.dtype):
            y = lean.Linear.apply(x, w, self.bias)
        else:
            y = F.linear(x, w, self.bias)
        return y if self.delta is None else y + self.delta(x)


class LayerNorm(lean.Lean, nn.LayerNorm):
    """LayerNorm that optionally computes in fp32 and casts back (CLIP's behaviour under fp16/bf16).

    With ``recompute`` and a low-precision input, backward keeps that input instead of autograd's fp32 copy of it.
    """

    def __init__(self, dim: int, eps: float, fp32: bool):
        super().__init__(dim, eps=eps)
        self.fp32 = fp32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and x.dtype != torch.float32 and lean.needs_graph(x, self.weight, self.bias):
            if self.fp32:
                return lean.LayerNormFp32.apply(x, self.weight, self.bias, self.eps)
            return lean.Recompute.apply(self._norm, None, x, self.weight, self.bias)  # autocast decides the dtype here
        return self._norm(x, self.weight, self.bias)

    def recompute_output(self, x: torch.Tensor) -> torch.Tensor:
        """Forward's output again, bit for bit, as the ``recompute`` path computed it (for ``lean.NormLinear``)."""
        if self.fp32 and x.dtype != torch.float32:
            return lean.layer_norm_fp32(x, self.weight, self.bias, self.eps)[0]
        return self._norm(x, self.weight, self.bias)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if not self.fp32 or x.dtype == torch.float32:
            return F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)
        return F.layer_norm(x.float(), self.normalized_shape, weight.float(), bias.float(), self.eps).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, batch first, no mask, no dropout.

    ``math=True`` computes it with explicit products and a softmax instead of ``F.scaled_dot_product_attention``: AIM's
    temporal pass (L = T = 8 to 32 tokens) takes it on CUDA, since fused attention kernels tile 64-128 queries and a
    sequence of 8 fills a tile to a sixteenth (measured: docs/benchmarks.md). Under autocast the softmax runs in fp32,
    as in the reference's ``nn.MultiheadAttention``; equal to SDPA up to rounding (tests/models/test_vit.py).
    ``over_frames`` is AIM's temporal pass read straight from the frame layout (``AIMBlock.temporal_frames``).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        # frame offset each head reads its keys and values from (ZeroI2V's spatio-temporal dual-headed attention,
        # adapters/stdha.py); empty: every head attends within its own frame
        self.head_shifts: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor, math: bool = False, num_frames: int | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, D): attention among the L tokens of each sequence. With ``head_shifts`` and
        ``num_frames`` the B sequences are frames of B/T videos, and head h of frame t takes its keys and values from
        frame t + head_shifts[h]."""
        return self.attend(*self.project(x), math=math, num_frames=num_frames)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, D) -> q, k, v, each (B, H, L, D/H), unscaled and unshifted (EVL reads q and k of frozen blocks)."""
        b, n, d = x.shape
        return self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, math: bool = False,
               num_frames: int | None = None) -> torch.Tensor:  # fmt: skip
        """``project``'s q, k, v -> (B, L, D): the heads' attention (keys and values shifted in time per
        ``head_shifts`` when ``num_frames`` is given), then the output projection."""
        if self.head_shifts and num_frames is not None:  # images, and AIM's temporal pass, give no num_frames
            k, v = shift_heads(k, num_frames, self.head_shifts), shift_heads(v, num_frames, self.head_shifts)
        if not math:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1), dim=-1).to(v.dtype) @ v
        b, h, n, hd = x.shape
        return self.proj(x.transpose(1, 2).reshape(b, n, h * hd))

    def over_frames(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D): attention among the T frames of each token position, read in the frame layout.

        The same function as ``forward`` on ``(b t) n d -> (b n) t d`` regrouped tokens, without the regrouping: the
        projections work token by token in any order, and the attention is broadcast multiply-and-sum over strided
        views (fp32 scores and softmax, as ``math=True``), which torch.compile fuses into memory-bound kernels with
        no layout copy. Eager would materialise B x T x T x N x D products: meant to run compiled.
        """
        bt, n, d = x.shape
        qkv = self.qkv(x).view(bt // frames, frames, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.unbind(3)  # (B, T, N, H, hd) each
        # Summed in fp32: compiled, the products are fp32 too (inductor computes low-precision inputs in fp32) and no
        # fp32 copy of q, k or v is written, which .float() on them would make the compiler do.
        scores = (q.unsqueeze(2) * k.unsqueeze(1)).sum(-1, dtype=torch.float32) * q.shape[-1] ** -0.5  # (B,Tq,Tk,N,H)
        out = (torch.softmax(scores, dim=2).unsqueeze(-1) * v.unsqueeze(1)).sum(2)  # (B, T, N, H, hd)
        return self.proj(out.to(qkv.dtype).reshape(bt, n, d))


def shift_heads(x: torch.Tensor, frames: int, shifts: tuple[int, ...]) -> torch.Tensor:
    """(B*T, H, N, hd) -> the same shape, head h of frame t taken from frame t + shifts[h] where that frame exists
    (else its own frame's, as ZeroI2V's TemporalShift, which starts from a copy); heads past len(shifts) unshifted."""
    out = x.clone().view(-1, frames, *x.shape[1:])
    src = x.view(-1, frames, *x.shape[1:])
    for h, s in enumerate(shifts):
        if s > 0:
            out[:, : frames - s, h] = src[:, s:, h]
        elif s < 0:
            out[:, -s:, h] = src[:, : frames + s, h]
    return out.view_as(x)


class Mlp(nn.Module):
    """fc1 -> activation -> fc2. With ``recompute_hidden``, backward keeps the input, not the (4x wider) hidden layer,
    and runs fc1 and the activation again: one more fc1 matmul per step for the biggest saved tensor of the block."""

    recompute_hidden = False

    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = QuickGELU() if act == "quick_gelu" else nn.GELU()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor, normed_from: tuple[LayerNorm, torch.Tensor] | None = None) -> torch.Tensor:
        """(..., D) -> (..., D). ``normed_from=(norm, src)`` says that x is ``norm(src)``: with ``recompute_hidden``
        backward then keeps ``src`` (the norm keeps it anyway) instead of x."""
        w, b = self.fc1.weight, self.fc1.bias
        if self.recompute_hidden and self.fc1.delta is None and lean.needs_graph(x, w, b):
            return self.fc2(lean.Recompute.apply(self._hidden, norm_source(normed_from), x, w, b))
        return self.fc2(self.act(self.fc1(x)))

    def _hidden(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.act(F.linear(x, weight, bias))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, facts: ViTFacts):
        super().__init__()
        d = facts.width
        self.norm1 = LayerNorm(d, facts.ln_eps, facts.ln_fp32)
        self.attn = Attention(d, facts.heads)
        self.norm2 = LayerNorm(d, facts.ln_eps, facts.ln_fp32)
        self.mlp = Mlp(d, int(d * facts.mlp_ratio), facts.act)

    @classmethod
    def from_parts(cls, norm1: LayerNorm, attn: Attention, norm2: LayerNorm, mlp: Mlp) -> Block:
        """A block made of existing layers (a merged adapted block hands its frozen layers back)."""
        blk = cls.__new__(cls)
        nn.Module.__init__(blk)
        blk.norm1, blk.attn, blk.norm2, blk.mlp = norm1, attn, norm2, mlp
        return blk

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D). ``num_frames``: frames per video, for attention heads shifted in time."""
        x = x + self.attn(self.norm1(x), num_frames=num_frames)
        return x + self.mlp(self.norm2(x), normed_from=(self.norm2, x))


class VisionTransformer(nn.Module):
    """Image ViT: patch embedding, class token, positional embedding, optional pre-norm, blocks, final norm.

    Parameter names are timm's: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``norm_pre``,
    ``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``.
    """

    def __init__(self, facts: ViTFacts, image_size: int | None = None, name: str = "custom"):
        super().__init__()
        self.facts = facts
        self.name = name
        self.image_size = image_size or facts.image_size
        if self.image_size % facts.patch_size:
            raise ValueError(f"image size {self.image_size} is not a multiple of patch size {facts.patch_size}")
        d, p = facts.width, facts.patch_size
        self.grid = self.image_size // p
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, d, kernel_size=p, stride=p, bias=facts.patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid**2 + 1, d))
        self.norm_pre = LayerNorm(d, facts.ln_eps, facts.ln_fp32) if facts.pre_norm else nn.Identity()
        self.blocks = nn.ModuleList(Block(facts) for _ in range(facts.depth))
        self.norm = LayerNorm(d, facts.ln_eps, facts.ln_fp32)
        self.reset_parameters()

    @property
    def width(self) -> int:
        return self.facts.width

    def reset_parameters(self) -> None:
        """Random init (trunc-normal 0.02 linears and embeddings); pretrained weights overwrite it."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse a wrong channel count or image size with a message, never a silent broadcast."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected frames of shape (B*T, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected {self.image_size}x{self.image_size} frames (the size the positional embedding was built "
                f"for), got {x.shape[-2]}x{x.shape[-1]}; resize the input or build the model with that image_size "
                "(pretrained positional embeddings are resized on load)"
            )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, D): patch tokens with the class token prepended and positions added."""
        self.check_input(x)
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.pos_embed.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D): final-normed class token of each image."""
        x = self.norm_pre(self.embed(x))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x[:, 0])


def list_backbones() -> list[str]:
    """The image backbone rows (``model.backbone``); ``vidapter backbones`` prints them with the weights each takes.
    The tiny rows are structures for tests, with no published weights."""
    return list(BACKBONES)


def build_vit(name: str, image_size: int | None = None) -> VisionTransformer:
    """A randomly initialised image ViT for the named row of ``BACKBONES``; unknown names list the known ones."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    return VisionTransformer(BACKBONES[name], image_size, name=name)


def norm_source(normed_from: tuple[LayerNorm, torch.Tensor] | None):
    """``(norm.recompute_output, src detached)`` for a tensor that is ``norm(src)``, where that norm keeps src in its
    recompute mode (so recomputing from it costs no memory); else None."""
    if normed_from is None or not normed_from[0].recompute:
        return None
    norm, src = normed_from
    return norm.recompute_output, src.detach()


def set_recompute(model: nn.Module, mode: str) -> None:
    """What backward keeps (memory) against what it recomputes (time); gradients are the same in every mode.

    "none": plain autograd. "pointwise": LayerNorms keep their bf16/fp16 input instead of an fp32 copy, QuickGELU
    keeps one tensor instead of two, frozen linear layers keep no bf16 copy of their weight,
    adapters keep their pre-activation but not its GELU, and an adapter fed by a LayerNorm keeps nothing of its input
    (elementwise ops and weight casts again in backward, no matmul). "mlp": pointwise, and every MLP keeps its input
    instead of its hidden layer (one more fc1 matmul per block). Whole-block checkpointing is
    ``VideoClassifier(grad_checkpointing=True)``. Measured in docs/benchmarks.md (benchmarks/saved_memory.py).
    """
    if mode not in RECOMPUTE_MODES:
        raise ValueError(f"recompute mode {mode!r} unknown; use one of {RECOMPUTE_MODES}")
    for m in model.modules():
        if isinstance(m, lean.Lean):
            m.recompute = mode != "none"
        elif isinstance(m, Mlp):
            m.recompute_hidden = mode == "mlp"


def resize_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubically resample a (1, 1 + g*g, D) positional embedding to (1, 1 + grid*grid, D); the class slot is kept.

    Same convention as timm's ``resample_abs_pos_embed`` (bicubic, align_corners=False, antialias), checked in tests.
    """
    old = int(round((pos_embed.shape[1] - 1) ** 0.5))
    if old * old != pos_embed.shape[1] - 1:
        raise ValueError(f"positional embedding of {pos_embed.shape[1]} tokens is not 1 + a square grid")
    if old == grid:
        return pos_embed
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    dtype = patches.dtype
    patches = patches.float().reshape(1, old, old, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True)
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(dtype)
    return torch.cat([cls, patches], dim=1)

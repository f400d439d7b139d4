"""A plain image Vision Transformer with timm's parameter names, for every image family vidapter adapts.

ViT: Dosovitskiy et al., arXiv 2010.11929. CLIP image tower: Radford et al., arXiv 2103.00020. The families' own
switches (LayerScale, registers, RoPE, q/v-only biases, SwiGLU, sub-LN, attention pooling) follow DINOv2
(2304.07193), DINOv3 (2508.10104), EVA-02 (2303.11331), SigLIP (2303.15343) and Perception Encoder (2504.13181).
Checked numerically against open_clip, transformers and timm (tests/models/test_vit.py, tests/models/test_families.py).

Every architecture fact lives in one table, ``BACKBONES`` (models/backbones.py); a model is built from a named row,
never guessed from a layer count or a file name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidapter.errors import ConfigError
from vidapter.models import lean
from vidapter.models.backbones import BACKBONES, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, ViTFacts  # noqa: F401
from vidapter.models.pool import AttentionPool
from vidapter.models.rope import Rope

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        lean_path = self.recompute and x.is_contiguous() and lean.needs_graph(x, w, self.bias)
        if lean_path and (not w.requires_grad or lean.compute_dtype(x) == w.dtype):
            return lean.Linear.apply(x, w, self.bias)
        return F.linear(x, w, self.bias)


def rebase(module: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """``module`` as an instance of ``cls`` (a subclass a method defines, or the plain class back): the same tensors,
    submodules and settings, so the state dict keeps its names. Put it in place with ``replace_module``."""
    new = cls.__new__(cls)
    state = dict(module.__dict__)
    for key in ("_parameters", "_buffers", "_modules"):
        state[key] = dict(state[key])
    new.__dict__.update(state)
    return new


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> str:
    """Put ``new`` where ``old`` sits inside ``root`` (every place, where a module is shared); returns its name."""
    names = [name for name, m in root.named_modules(remove_duplicate=False) if m is old and name]
    if not names:
        raise ValueError(f"{type(old).__name__} is not inside this {type(root).__name__}")
    for name in names:
        parent, _, attr = name.rpartition(".")
        setattr(root.get_submodule(parent) if parent else root, attr, new)
    return names[0]


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
    A method changes it by replacing it (ZeroI2V's shifted heads: ``adapters.stdha.ShiftedAttention``) or its
    projections (LoRA: ``adapters.lora.LoRALinear``), never through a switch in here.
    """

    def __init__(self, dim: int, heads: int, *, rope: Rope | None = None, norm: LayerNorm | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = Linear(dim, 3 * dim)
        self.norm = norm if norm is not None else nn.Identity()  # EVA02's sub-LN before the output projection
        self.proj = Linear(dim, dim)
        self.rope = rope  # rotary positions of the spatial pass (a plain object: nothing in the state dict)

    def forward(self, x: torch.Tensor, math: bool = False, num_frames: int | None = None,
                spatial: bool = True) -> torch.Tensor:  # fmt: skip
        """(B, L, D) -> (B, L, D): attention among the L tokens of each sequence. ``num_frames``: the B sequences are
        frames of B/T videos (this attention attends within each; a replacement may attend across them).
        ``spatial=False``: the L tokens are not one image's (AIM's temporal pass, one position over T frames), so no
        rotary positions: at one spatial position the rotation cancels in q.k."""
        return self.attend(*self.project(x, spatial), math=math, num_frames=num_frames)

    def project(self, x: torch.Tensor, spatial: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, D) -> q, k, v, each (B, H, L, D/H), unscaled and unshifted (EVL reads q and k of frozen blocks);
        q and k rotated by their positions where the backbone has RoPE and the tokens are an image's."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.rope is not None and spatial:
            tables = self.rope.tables(math.isqrt(n - self.rope.prefix), x.device)
            q, k = self.rope.apply(q, tables), self.rope.apply(k, tables)
        return q, k, v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, math: bool = False,
               num_frames: int | None = None) -> torch.Tensor:  # fmt: skip
        """``project``'s q, k, v -> (B, L, D): the heads' attention, then the output projection."""
        if not math:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1), dim=-1).to(v.dtype) @ v
        return self.output(x)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The heads' outputs (B, H, L, D/H) -> (B, L, D): concatenated, normed where the family has a sub-LN,
        projected."""
        b, h, n, hd = x.shape
        return self.proj(self.norm(x.transpose(1, 2).reshape(b, n, h * hd)))


def activation(name: str) -> nn.Module:
    """The row's activation module (QuickGELU keeps less for backward in the recompute modes)."""
    acts = {"quick_gelu": QuickGELU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "silu": nn.SiLU}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(acts)}")
    return acts[name]()


class Mlp(nn.Module):
    """fc1 -> activation -> fc2; ``packed``: fc1 makes [x1; x2] and the hidden layer is act(x1) * x2 (DINOv2-g's
    SwiGLU). With ``recompute_hidden``, backward keeps the input, not the (4x wider) hidden layer, and runs fc1 and
    the activation again: one more fc1 matmul per step for the biggest saved tensor of the block."""

    recompute_hidden = False

    def __init__(self, dim: int, hidden: int, act: str, packed: bool = False):
        super().__init__()
        self.packed = packed
        self.fc1 = Linear(dim, 2 * hidden if packed else hidden)
        self.act = activation(act)
        self.fc2 = Linear(hidden, dim)

    def inputs(self) -> list[Linear]:
        """The linear layers that read the MLP's input (ZeroI2V folds an adapter into them)."""
        return [self.fc1]

    def forward(self, x: torch.Tensor, normed_from: tuple[LayerNorm, torch.Tensor] | None = None) -> torch.Tensor:
        """(..., D) -> (..., D). ``normed_from=(norm, src)`` says that x is ``norm(src)``: with ``recompute_hidden``
        backward then keeps ``src`` (the norm keeps it anyway) instead of x."""
        w, b = self.fc1.weight, self.fc1.bias
        if self.recompute_hidden and type(self.fc1) is Linear and lean.needs_graph(x, w, b):  # not a replaced fc1
            return self.fc2(lean.Recompute.apply(self._hidden, norm_source(normed_from), x, w, b))
        return self.fc2(self._activate(self.fc1(x)))

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        if self.packed:
            h, gate = h.chunk(2, dim=-1)
            return self.act(h) * gate
        return self.act(h)

    def _hidden(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self._activate(F.linear(x, weight, bias))


class SwiGLU(nn.Module):
    """EVA02's MLP: act(fc1_g x) * fc1_x x -> LayerNorm (sub-LN) -> fc2. The "mlp" recompute mode does not apply."""

    def __init__(self, dim: int, hidden: int, act: str, eps: float):
        super().__init__()
        self.fc1_g = Linear(dim, hidden)
        self.fc1_x = Linear(dim, hidden)
        self.act = activation(act)
        self.norm = LayerNorm(hidden, eps, fp32=False)
        self.fc2 = Linear(hidden, dim)

    def inputs(self) -> list[Linear]:
        return [self.fc1_g, self.fc1_x]

    def forward(self, x: torch.Tensor, normed_from: tuple[LayerNorm, torch.Tensor] | None = None) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        return self.fc2(self.norm(self.act(self.fc1_g(x)) * self.fc1_x(x)))


class LayerScale(nn.Module):
    """x * gamma per channel (DINOv2, DINOv3), in x's dtype: under autocast the residual branch stays bf16."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.to(x.dtype)


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))); x + ls2(mlp(norm2(x))). ls1/ls2 are LayerScale where the
    family has it, else identities."""

    def __init__(self, facts: ViTFacts, rope: Rope | None = None):
        super().__init__()
        d, eps, fp32 = facts.width, facts.ln_eps, facts.ln_fp32
        self.norm1 = LayerNorm(d, eps, fp32)
        self.attn = Attention(d, facts.heads, rope=rope, norm=LayerNorm(d, eps, fp32) if facts.attn_norm else None)
        self.ls1 = LayerScale(d) if facts.layer_scale else nn.Identity()
        self.norm2 = LayerNorm(d, eps, fp32)
        if facts.mlp == "swiglu_subln":
            self.mlp = SwiGLU(d, facts.hidden, facts.act, eps)
        else:
            self.mlp = Mlp(d, facts.hidden, facts.act, packed=facts.mlp == "swiglu_packed")
        self.ls2 = LayerScale(d) if facts.layer_scale else nn.Identity()

    @classmethod
    def from_parts(cls, norm1: LayerNorm, attn: Attention, norm2: LayerNorm, mlp: nn.Module, ls1: nn.Module,
                   ls2: nn.Module) -> Block:  # fmt: skip
        """A block made of existing layers (a merged adapted block hands its frozen layers back)."""
        blk = cls.__new__(cls)
        nn.Module.__init__(blk)
        blk.norm1, blk.attn, blk.ls1, blk.norm2, blk.mlp, blk.ls2 = norm1, attn, ls1, norm2, mlp, ls2
        return blk

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D). ``num_frames``: frames per video, for attention heads shifted in time."""
        x = x + self.ls1(self.attn(self.norm1(x), num_frames=num_frames))
        return x + self.ls2(self.mlp(self.norm2(x), normed_from=(self.norm2, x)))


class VisionTransformer(nn.Module):
    """Image ViT: patch embedding, class and register tokens, positions, optional pre-norm, blocks, final norm, and
    the family's pooling head where it has one.

    Parameter names are timm's: ``patch_embed.proj``, ``cls_token``, ``reg_token``, ``pos_embed``, ``norm_pre``,
    ``blocks.{i}.{norm1,attn.qkv,attn.norm,attn.proj,ls1.gamma,norm2,mlp.*,ls2.gamma}``, ``norm``, ``attn_pool.*``.
    Token order: [class token, registers, patches] (models/backbones.py says which a row has).
    """

    def __init__(self, facts: ViTFacts, image_size: int | None = None, name: str = "custom"):
        super().__init__()
        self.facts = facts
        self.name = name
        self.image_size = image_size or facts.image_size
        # SigLIP So400m/14 at 384 px drops the last 6 px, as released: a remainder only where the row's own size has it
        if self.image_size % facts.patch_size not in (0, facts.image_size % facts.patch_size):
            raise ConfigError(f"image size {self.image_size} is not a multiple of patch size {facts.patch_size}")
        if facts.registers and facts.pos_embed == "cls":
            raise ValueError("registers carry no position: a row with registers has pos_embed 'patches' or 'none'")
        d, p = facts.width, facts.patch_size
        self.grid = self.image_size // p
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, d, kernel_size=p, stride=p, bias=facts.patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if facts.class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, facts.registers, d)) if facts.registers else None
        slots = {"cls": 1, "patches": 0}
        if facts.pos_embed in slots:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.grid**2 + slots[facts.pos_embed], d))
        else:
            self.pos_embed = None
        self.norm_pre = LayerNorm(d, facts.ln_eps, facts.ln_fp32) if facts.pre_norm else nn.Identity()
        rope = Rope(facts.rope, d // facts.heads, facts.rope_grid, facts.prefix) if facts.rope else None
        self.blocks = nn.ModuleList(Block(facts, rope) for _ in range(facts.depth))
        self.norm = LayerNorm(d, facts.ln_eps, facts.ln_fp32)
        self.attn_pool = AttentionPool(d, facts.attn_pool, facts.hidden, activation(facts.act), facts.ln_eps) \
            if facts.attn_pool else None  # fmt: skip
        self.reset_parameters()

    @property
    def width(self) -> int:
        return self.facts.width

    @property
    def num_prefix(self) -> int:
        """Tokens before the patches (class token and registers)."""
        return self.facts.prefix

    def reset_parameters(self) -> None:
        """Random init (trunc-normal 0.02 linears and embeddings); pretrained weights overwrite it."""
        for p in (self.pos_embed, self.reg_token):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        if self.cls_token is not None:
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
        """(B, 3, H, W) -> (B, N, D): patch tokens, the class token and registers prepended, positions added (to
        the class token and patches, or to patches only; registers never get one)."""
        self.check_input(x)
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        if self.facts.pos_embed == "patches":
            x = x + self.pos_embed.to(x.dtype)
        prefix = [t.to(x.dtype).expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        x = torch.cat([*prefix, x], dim=1) if prefix else x
        return x + self.pos_embed.to(x.dtype) if self.facts.pos_embed == "cls" else x

    def pool(self, x: torch.Tensor, feature: str | None = None) -> torch.Tensor:
        """(B, N, D) tokens out of the blocks -> (B, D), after the final norm: the class token ("cls"), the
        pretrained attention-pooling head ("pool": SigLIP's MAP head, PE's attention pool) or the mean of the patch
        tokens ("mean", registers left out). None: the row's own feature."""
        feature = feature or self.facts.feature
        if feature == "cls":
            if self.cls_token is None:
                raise ConfigError(f"backbone {self.name} has no class token; use feature 'pool' or 'mean'")
            return self.norm(x[:, 0])
        if feature == "pool":
            if self.attn_pool is None:
                raise ConfigError(f"backbone {self.name} has no pretrained pooling head; use feature 'cls' or 'mean'")
            return self.attn_pool(self.norm(x))
        if feature == "mean":
            return self.norm(x)[:, self.num_prefix :].mean(dim=1)
        raise ConfigError(f"unknown feature {feature!r}; use 'cls', 'pool' or 'mean'")

    def forward(self, x: torch.Tensor, feature: str | None = None) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D): each image's feature (``pool``)."""
        x = self.norm_pre(self.embed(x))
        for blk in self.blocks:
            x = blk(x)
        return self.pool(x, feature)


def list_backbones() -> list[str]:
    """The image backbone rows (``model.backbone``); ``vidapter backbones`` prints them with the weights each takes.
    The tiny rows are structures for tests, with no published weights."""
    return list(BACKBONES)


def build_vit(name: str, image_size: int | None = None) -> VisionTransformer:
    """A randomly initialised image ViT for the named row of ``BACKBONES``; unknown names list the known ones."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
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
    ``VideoClassifier(grad_checkpointing=True)``. Measured in docs/benchmarks.md (benchmarks/model/saved_memory.py).
    """
    if mode not in RECOMPUTE_MODES:
        raise ConfigError(f"recompute mode {mode!r} unknown; use one of {RECOMPUTE_MODES}")
    for m in model.modules():
        if isinstance(m, lean.Lean):
            m.recompute = mode != "none"
        elif isinstance(m, Mlp):
            m.recompute_hidden = mode == "mlp"


# resampling mode -> (interpolation, antialias, DINOv2's scale-factor offset)
_RESAMPLING = {"bicubic_aa": ("bicubic", True, 0.0), "bicubic": ("bicubic", False, 0.0),
               "dinov2": ("bicubic", False, 0.1), "dinov2_reg": ("bicubic", True, 0.0),
               "bilinear": ("bilinear", False, 0.0)}  # fmt: skip


def resize_pos_embed(pos_embed: torch.Tensor, grid: int, slots: int = 1, mode: str = "bicubic_aa") -> torch.Tensor:
    """Resample a (1, slots + g*g, D) positional embedding to (1, slots + grid*grid, D) as the family's own code does;
    the ``slots`` leading (class token) entries are kept.

    ``bicubic_aa``: timm's ``resample_abs_pos_embed`` (bicubic, antialias; CLIP rows, checked in tests). ``bicubic``:
    no antialias (EVA02, SigLIP). ``dinov2``: DINOv2's ``interpolate_pos_encoding`` without registers (bicubic with
    scale factor (grid + 0.1) / g, no antialias); ``dinov2_reg``: with registers (to the size, antialias).
    ``bilinear``: PE's (no antialias). In fp32, cast back.
    """
    old = int(round((pos_embed.shape[1] - slots) ** 0.5))
    if old * old != pos_embed.shape[1] - slots:
        raise ValueError(f"positional embedding of {pos_embed.shape[1]} tokens is not {slots} + a square grid")
    if old == grid:
        return pos_embed
    head, patches = pos_embed[:, :slots], pos_embed[:, slots:]
    dtype = patches.dtype
    patches = patches.float().reshape(1, old, old, -1).permute(0, 3, 1, 2)
    if mode not in _RESAMPLING:
        raise ConfigError(f"unknown position resampling {mode!r}; known: {', '.join(_RESAMPLING)}")
    interp, antialias, offset = _RESAMPLING[mode]
    # DINOv2 passes a scale factor, not a size: the offset moves where the resampled positions sample the old grid
    size = {"scale_factor": ((grid + offset) / old,) * 2} if offset else {"size": (grid, grid)}
    patches = F.interpolate(patches, mode=interp, antialias=antialias, align_corners=False, **size)
    if patches.shape[-1] != grid:
        raise ValueError(f"resampling {old}x{old} positions gave {patches.shape[-1]}, not {grid}")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(dtype)
    return torch.cat([head, patches], dim=1)

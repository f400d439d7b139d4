"""The image backbone table: every architecture fact of every image model vidapter adapts, one row per structure.

A model is built from a named row, never guessed from a layer count or a file name. A row holds what the weights
alone cannot say (activation, LayerNorm eps, input mean/std) and the switches where families differ from the OpenAI
CLIP block: LayerScale, register tokens, rotary positions, q/k/v bias, SwiGLU MLPs, sub-LayerNorms, the attention
pooling head. The published names that load into each row are in models/pretrained.py (``WEIGHTS``); the facts were
read from each family's release and checked against timm, open_clip and transformers (tests/models/test_families.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

CLIP_MEAN = (122.77, 116.75, 104.09)
CLIP_STD = (68.50, 66.63, 70.32)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
HALF = (127.5, 127.5, 127.5)  # mean = std = 0.5 on the 0-1 scale (SigLIP, PE, the L/14 LAION-2B CLIP)


@dataclass(frozen=True)
class ViTFacts:
    """Architecture facts of one image backbone. Mean/std are on the 0-255 scale, as the reference configs."""

    width: int
    depth: int
    heads: int
    patch_size: int
    image_size: int  # the native size: the grid its position table was trained at
    act: str  # vit.activation's: quick_gelu (OpenAI CLIP), gelu (erf), gelu_tanh (SigLIP), silu (SwiGLU MLPs)
    ln_eps: float
    ln_fp32: bool  # CLIP computes LayerNorm in fp32 whatever the input dtype
    pre_norm: bool  # CLIP's ln_pre after the embeddings
    patch_bias: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mlp_ratio: float = 4.0
    layout: str = "openai"  # the key names of the family's original release ("openai" or "timm"): AIM's decay rule
    family: str = "clip"
    mlp: str = "plain"  # plain fc1-act-fc2; swiglu_packed: fc1 -> [x1; x2] -> act(x1) * x2 (DINOv2-g);
    # swiglu_subln: act(fc1_g x) * fc1_x x -> LayerNorm -> fc2 (EVA02)
    mlp_hidden: int | None = None  # explicit hidden width (SwiGLU rows); None: width * mlp_ratio
    class_token: bool = True
    registers: int = 0  # register / storage tokens after the class token, without position (DINOv2-reg, DINOv3)
    pos_embed: str = "cls"  # learned absolute positions: "cls" 1 + HW, "patches" HW, "none" (RoPE only)
    pos_resize: str = "bicubic_aa"  # how the family's own code resamples its positions (vit.resize_pos_embed)
    layer_scale: bool = False  # x + gamma * f(x) (DINOv2, DINOv3)
    qkv_bias: str = "qkv"  # "qkv", or "qv": no key bias (kept as zeros: softmax ignores a key bias)
    attn_norm: bool = False  # LayerNorm before the attention's output projection (EVA02's sub-LN)
    rope: str | None = None  # 2D rotary positions on q and k: "eva02", "pe", "dinov3" (models/rope.py)
    rope_grid: int = 0  # the grid the rotary table was built for (EVA02, PE)
    attn_pool: int = 0  # heads of the pretrained attention-pooling head (SigLIP's MAP, PE's attn_pool); 0: none
    feature: str = "cls"  # the per-frame feature by default: "cls", "pool" (the pooling head), "mean" (of patches)
    licence: str = "MIT"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def prefix(self) -> int:
        """Tokens before the patches: the class token and the registers."""
        return int(self.class_token) + self.registers

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + self.prefix

    @property
    def hidden(self) -> int:
        return self.mlp_hidden or int(self.width * self.mlp_ratio)


def _clip(width: int, depth: int, heads: int, patch: int, size: int = 224, **kw) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "quick_gelu", 1e-5, True, True, False, CLIP_MEAN, CLIP_STD, **kw)


def _timm_in21k(width: int, depth: int, heads: int, patch: int, size: int = 224) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-6, False, False, True, IMAGENET_MEAN, IMAGENET_STD,
                    layout="timm", family="in21k", licence="Apache-2.0")  # fmt: skip


def _open_clip(width: int, depth: int, heads: int, patch: int, mean=CLIP_MEAN, std=CLIP_STD, **kw) -> ViTFacts:
    """open_clip's LAION-2B / DataComp CLIP: OpenAI's structure and layout with exact GELU."""
    return replace(_clip(width, depth, heads, patch, **kw), act="gelu", mean=mean, std=std, family="open_clip")


def _siglip(width: int, depth: int, heads: int, patch: int, size: int, hidden: int | None = None) -> ViTFacts:
    """SigLIP / SigLIP 2: no class token, positions for patches only, the MAP head; tanh GELU as trained (timm and
    open_clip run exact GELU on the same weights: at most 4.7e-4 apart per element)."""
    return ViTFacts(width, depth, heads, patch, size, "gelu_tanh", 1e-6, False, False, True, HALF, HALF,
                    layout="timm", family="siglip", mlp_hidden=hidden, class_token=False, pos_embed="patches",
                    pos_resize="bicubic", attn_pool=heads, feature="pool", licence="Apache-2.0")  # fmt: skip


def _dinov2(width: int, depth: int, heads: int, registers: int = 0, swiglu: bool = False, size: int = 518) -> ViTFacts:
    """DINOv2: LayerScale, positions for 518 px resampled as its own code does; registers carry no position."""
    return ViTFacts(width, depth, heads, 14, size, "silu" if swiglu else "gelu", 1e-6, False, False, True,
                    IMAGENET_MEAN, IMAGENET_STD, layout="timm", family="dinov2",
                    mlp="swiglu_packed" if swiglu else "plain", mlp_hidden=4096 if swiglu else None,
                    registers=registers, pos_embed="patches" if registers else "cls",
                    pos_resize="dinov2_reg" if registers else "dinov2", layer_scale=True,
                    licence="Apache-2.0")  # fmt: skip


def _dinov3(width: int, depth: int, heads: int, size: int = 224) -> ViTFacts:
    """DINOv3: rotary positions only, 4 storage tokens, LayerScale, no key bias."""
    return ViTFacts(width, depth, heads, 16, size, "gelu", 1e-5, False, False, True, IMAGENET_MEAN, IMAGENET_STD,
                    layout="timm", family="dinov3", registers=4, pos_embed="none", layer_scale=True, qkv_bias="qv",
                    rope="dinov3", licence="DINOv3 License")  # fmt: skip


def _pe_core(width: int, depth: int, heads: int, patch: int, size: int) -> ViTFacts:
    """Perception Encoder Core: OpenAI's layout with exact GELU, 2D RoPE beside the learned positions, an
    attention pool (8 heads) after ln_post."""
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-5, False, True, False, HALF, HALF, family="pe_core",
                    pos_resize="bilinear", rope="pe", rope_grid=size // patch, attn_pool=8,
                    licence="Apache-2.0")  # fmt: skip


def _eva02(width: int, depth: int, heads: int, patch: int, size: int, rope_grid: int = 16) -> ViTFacts:
    """EVA02-CLIP: q and v biases, sub-LN in attention and MLP, SwiGLU (8/3), 2D RoPE beside learned positions."""
    return ViTFacts(width, depth, heads, patch, size, "silu", 1e-6, False, False, True, CLIP_MEAN, CLIP_STD,
                    layout="timm", family="eva02", mlp="swiglu_subln", mlp_hidden=int(width * 8 / 3),
                    pos_resize="bicubic", qkv_bias="qv", attn_norm=True, rope="eva02", rope_grid=rope_grid)  # fmt: skip


BACKBONES: dict[str, ViTFacts] = {
    "clip_vitb32": _clip(768, 12, 12, 32),
    "clip_vitb16": _clip(768, 12, 12, 16),
    "clip_vitl14": _clip(1024, 24, 16, 14),
    "clip_vitl14_336": _clip(1024, 24, 16, 14, 336),
    "in21k_vitb16": _timm_in21k(768, 12, 12, 16),
    "laion2b_vitb16": _open_clip(768, 12, 12, 16),
    "datacomp_vitb16": _open_clip(768, 12, 12, 16),
    "laion2b_vitl14": _open_clip(1024, 24, 16, 14, mean=HALF, std=HALF),
    "datacomp_vitl14": _open_clip(1024, 24, 16, 14),
    "laion2b_vith14": _open_clip(1280, 32, 16, 14),
    "laion2b_vitbigg14": _open_clip(1664, 48, 16, 14, mlp_hidden=8192),
    "siglip_vitb16": _siglip(768, 12, 12, 16, 224),
    "siglip_so400m14_384": _siglip(1152, 27, 16, 14, 384, hidden=4304),
    "siglip2_vitb16": _siglip(768, 12, 12, 16, 224),
    "siglip2_so400m14_378": _siglip(1152, 27, 16, 14, 378, hidden=4304),
    "dinov2_vits14": _dinov2(384, 12, 6),
    "dinov2_vitb14": _dinov2(768, 12, 12),
    "dinov2_vitl14": _dinov2(1024, 24, 16),
    "dinov2_vitg14": _dinov2(1536, 40, 24, swiglu=True),
    "dinov2_vits14_reg": _dinov2(384, 12, 6, registers=4),
    "dinov2_vitb14_reg": _dinov2(768, 12, 12, registers=4),
    "dinov2_vitl14_reg": _dinov2(1024, 24, 16, registers=4),
    "dinov2_vitg14_reg": _dinov2(1536, 40, 24, registers=4, swiglu=True),
    "dinov3_vits16": _dinov3(384, 12, 6),
    "dinov3_vitb16": _dinov3(768, 12, 12),
    "dinov3_vitl16": _dinov3(1024, 24, 16),
    "pe_core_vitb16": _pe_core(768, 12, 12, 16, 224),
    "pe_core_vitl14_336": _pe_core(1024, 24, 16, 14, 336),
    "eva02_clip_vitb16": _eva02(768, 12, 12, 16, 224),
    "eva02_clip_vitl14": _eva02(1024, 24, 16, 14, 224),
    "eva02_clip_vitl14_336": _eva02(1024, 24, 16, 14, 336),
    # Tiny variants for tests and the demo: the same code paths, far fewer parameters (width 64, depth 2, 4 heads,
    # patch 8, 32 px: a 4x4 grid).
    "demo_vit": _clip(96, 4, 3, 8, 32),  # pretrained by vidapter on synthetic images (vidapter/demo/pretrain.py)
    "tiny_clip": _clip(64, 2, 4, 8, 32),
    "tiny_in21k": _timm_in21k(64, 2, 4, 8, 32),
    "tiny_open_clip": _open_clip(64, 2, 4, 8, size=32),
    "tiny_siglip": _siglip(64, 2, 4, 8, 32),
    "tiny_dinov2": replace(_dinov2(64, 2, 4, size=32), patch_size=8),
    "tiny_dinov2_reg": replace(_dinov2(64, 2, 4, registers=4, size=32), patch_size=8),
    "tiny_dinov2_swiglu": replace(_dinov2(64, 2, 4, swiglu=True, size=32), patch_size=8, mlp_hidden=168),
    "tiny_dinov3": replace(_dinov3(64, 2, 4, size=32), patch_size=8),
    "tiny_pe_core": replace(_pe_core(64, 2, 4, 8, 32), attn_pool=8),
    "tiny_eva02": _eva02(64, 2, 4, 8, 32, rope_grid=4),
}

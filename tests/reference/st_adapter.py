"""The reference design of ST-Adapter, as a baseline: an independent transcription of models_adapter.py
(linziyi96/st-adapter @ b914b388f45ddd1968348ae2b1590a17eca75f8f) written from the official code without sharing code
with vidapter.

What is reproduced:

- OpenAI CLIP's visual tower with the official module and parameter names (``conv1``, ``class_embedding``,
  ``positional_embedding``, ``ln_pre``, ``transformer.resblocks.{i}.{attn,ln_1,mlp.c_fc,mlp.c_proj,ln_2}``,
  ``ln_post``), the head ``fc`` (plus a parameter-free ``dropout``), and ``adapter_pre_attn`` / ``adapter_pre_mlp``
  (``fc1``, depthwise ``conv`` Conv3d, ``fc2``) in the blocks ``i >= layers - adapter_layers``. There is **no**
  ``proj``: the official class has none, and its CLIP load (``strict=False``) drops CLIP's.
- The adapter: fc1 -> depthwise Conv3d over (T, H, W) -> fc2, no activation, applied to the patch tokens only (the CLS
  token bypasses it) and added back to them. The official adds in place (``x_id[:, 1:, :] += x``) and returns the
  mutated input; here the sum is built out of place (same numbers, same gradients).
- Frame layout (B, 3, T, H, W) -> (B*T, 3, H, W), row b*T+t; attention via ``F.scaled_dot_product_attention`` on
  ``attn.in_proj_weight`` (q|k|v row blocks) and ``attn.out_proj``; readout: per-frame CLS after the last block, mean
  over T, ``ln_post`` (frozen CLIP), Dropout(0.5), ``fc``.
- Init: adapter ``conv`` weight and bias, ``fc1``/``fc2`` biases zero (fc1/fc2 weights keep PyTorch's default), so
  every adapter starts as the identity; ``fc`` weight N(0, 0.02), bias zero.
- Trainable set: every parameter whose name contains "adapter", plus ``fc`` (created after the official freeze loop).

Deliberately left out: the official constructor casts every frozen parameter to fp16 (``p.data = p.data.half()``,
LayerNorms included) and training runs under autocast. Here everything stays fp32; the LayerNorm subclass still
computes in fp32 and casts back to the input dtype, as the official one does. The official cuDNN toggle around the
depthwise conv (speed only) and the CLIP TorchScript load (``model.load_state_dict(clip.visual.state_dict(),
strict=False)`` does the same here) are also left out.

Helpers: ``trainable_state_dict`` is what the official checkpoint's ``model`` entry holds (utils.save_model deletes
every parameter with ``requires_grad=False``), ``clip_visual_state_dict`` is the frozen CLIP image tower in OpenAI
names (as it would come from the CLIP file, with a stand-in ``proj``), and ``official_checkpoint`` is the whole
``checkpoint-{epoch}.pth`` dict. Intended for tests that compare vidapter's ST-Adapter with the reference (same
logits, checkpoint conversion) and for benchmarks/model/vs_baseline.py-style speed and memory comparisons.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F  # noqa: N812 (the official alias)
from einops import rearrange
from torch import nn


class LayerNorm(nn.LayerNorm):
    """CLIP's LayerNorm: computes in fp32, returns the input dtype."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Adapter(nn.Module):
    """fc1 -> depthwise Conv3d over (T, H, W) -> fc2 on the patch tokens, added to them; CLS passes through."""

    def __init__(self, in_channels, adapter_channels, kernel_size):
        super().__init__()
        self.fc1 = nn.Linear(in_channels, adapter_channels)
        self.conv = nn.Conv3d(
            adapter_channels,
            adapter_channels,
            kernel_size=kernel_size,
            stride=(1, 1, 1),
            padding=tuple(k // 2 for k in kernel_size),
            groups=adapter_channels,
        )
        self.fc2 = nn.Linear(adapter_channels, in_channels)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x, T):  # noqa: N803 (the official argument name); x: (B*T, 1+H*W, C), row b*T+t
        L = x.shape[1]  # noqa: N806
        H = W = round(math.sqrt(L - 1))  # noqa: N806
        assert L - 1 == H * W, "the official adapter needs a square patch grid"
        patches = x[:, 1:, :]
        y = self.fc1(patches)
        y = rearrange(y, "(b t) (h w) c -> b c t h w", t=T, h=H, w=W)
        y = self.conv(y)  # zero padding after fc1: frames outside [0, T) contribute nothing, not even fc1's bias
        y = rearrange(y, "b c t h w -> (b t) (h w) c")
        y = self.fc2(y)
        return torch.cat([x[:, :1, :], patches + y], dim=1)  # official: x[:, 1:, :] += y, in place


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, adapter_width, adapter_kernel_size, adapter_pre_attn, adapter_pre_mlp):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)  # only its in_proj_* and out_proj are used
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d_model, d_model * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(d_model * 4, d_model)),
                ]
            )
        )
        self.ln_2 = LayerNorm(d_model)
        self.adapter_pre_attn = Adapter(d_model, adapter_width, adapter_kernel_size) if adapter_pre_attn else None
        self.adapter_pre_mlp = Adapter(d_model, adapter_width, adapter_kernel_size) if adapter_pre_mlp else None

    def attention(self, x):  # (N, L, C), batch first
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = rearrange(qkv, "n l (s h d) -> s n h l d", s=3, h=self.attn.num_heads)
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head dim), no mask
        return self.attn.out_proj(rearrange(out, "n h l d -> n l (h d)"))

    def forward(self, x, num_frames):
        if self.adapter_pre_attn is not None:
            x = self.adapter_pre_attn(x, num_frames)
        x = x + self.attention(self.ln_1(x))
        if self.adapter_pre_mlp is not None:
            x = self.adapter_pre_mlp(x, num_frames)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, adapter_width, adapter_layers, adapter_kernel_size, adapter_pre_attn,
                 adapter_pre_mlp):  # fmt: skip
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList(
            [
                ResidualAttentionBlock(
                    d_model=width,
                    n_head=heads,
                    adapter_width=adapter_width,
                    adapter_kernel_size=adapter_kernel_size,
                    adapter_pre_attn=adapter_pre_attn and i >= layers - adapter_layers,
                    adapter_pre_mlp=adapter_pre_mlp and i >= layers - adapter_layers,
                )
                for i in range(layers)
            ]
        )

    def forward(self, x, num_frames):
        for block in self.resblocks:
            x = block(x, num_frames)
        return x


def _official_trainable(name: str) -> bool:
    # The official constructor freezes every parameter without "adapter" in its name, then creates the head ``fc``.
    return "adapter" in name or name.startswith("fc.")


class STAdapterViT(nn.Module):
    """The official ``VisionTransformer`` of models_adapter.py, in fp32.

    ``num_frames`` is kept for reference only: like the official forward, T is read from the input, (B, 3, T, H, W).
    """

    def __init__(self, input_resolution, patch_size, width, layers, heads, num_frames, num_classes, adapter_width,
                 adapter_layers, adapter_pre_attn, adapter_pre_mlp, adapter_kernel_size=(3, 1, 1)):  # fmt: skip
        super().__init__()
        self.input_resolution = input_resolution
        self.num_frames = num_frames
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(
            width, layers, heads, adapter_width, adapter_layers, tuple(adapter_kernel_size), adapter_pre_attn,
            adapter_pre_mlp,
        )  # fmt: skip
        self.ln_post = LayerNorm(width)
        for n, p in self.named_parameters():
            if not _official_trainable(n):
                p.requires_grad_(False)  # the official also casts these to fp16 here; not done (fp32 throughout)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(width, num_classes)
        nn.init.normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):  # (B, 3, T, H, W)
        B, T = x.shape[0], x.shape[2]  # noqa: N806
        x = rearrange(x, "b c t h w -> (b t) c h w")
        x = self.conv1(x)
        gh, gw = x.shape[-2:]
        x = rearrange(x, "n c gh gw -> n (gh gw) c")
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)  # (B*T, L, C)
        x = self.transformer(x, T)
        x = rearrange(x, "(b t) l c -> b t l c", b=B, t=T, l=gh * gw + 1)
        x = x[:, :, 0, :].mean(dim=1)  # per-frame CLS, mean over T
        x = self.ln_post(x)
        x = self.dropout(x)
        return self.fc(x)


VisionTransformer = STAdapterViT  # the official class name


def clip_vit_base_patch16_adapter12x384(num_classes=400, num_frames=8):
    """The K400 config (one adapter per block, before the MLP), randomly initialised (no CLIP load)."""
    return STAdapterViT(224, 16, 768, 12, 12, num_frames, num_classes, 384, 12, False, True, (3, 1, 1))


def clip_vit_base_patch16_adapter24x384(num_classes=174, num_frames=8):
    """The SSv2 config (adapters before attention and before the MLP), randomly initialised (no CLIP load)."""
    return STAdapterViT(224, 16, 768, 12, 12, num_frames, num_classes, 384, 12, True, True, (3, 1, 1))


def trainable_state_dict(model: STAdapterViT) -> dict:
    """The official checkpoint's ``model`` entry: the full state dict less every frozen parameter (utils.save_model)."""
    return OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items() if _official_trainable(k))


def clip_visual_state_dict(model: STAdapterViT, output_dim: int = 8) -> dict:
    """The frozen tensors in OpenAI CLIP visual-tower names and order, plus a random ``proj`` (width, output_dim).

    The official model has no ``proj`` (its CLIP load is non-strict and ignores CLIP's); the stand-in only makes the
    dict look like a CLIP visual tower. Tensors are fp32 (a CLIP file stores fp16).
    """
    frozen = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items() if not _official_trainable(k))
    width = model.class_embedding.shape[0]
    out = OrderedDict()
    out["class_embedding"] = frozen.pop("class_embedding")
    out["positional_embedding"] = frozen.pop("positional_embedding")
    out["proj"] = width**-0.5 * torch.randn(width, output_dim)
    out.update(frozen)  # conv1, ln_pre, transformer.resblocks.*, ln_post
    return out


def official_checkpoint(model: STAdapterViT) -> dict:
    """A ``checkpoint-2.pth`` as utils.save_model writes it, with empty optimizer/scheduler/scaler states."""
    return {"model": trainable_state_dict(model), "optimizer": {}, "lr_sched": {}, "loss_scaler": {}, "next_epoch": 3}

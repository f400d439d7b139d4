"""The reference design of AIM, as a baseline: an independent transcription of vit_clip.py
(taoyang1122/adapt-image-models) written from the reference code without sharing code with vidapter.

Sequence-first tokens (N, B*T, D), one ``nn.MultiheadAttention`` per block shared by the temporal and spatial passes,
einops rearranges between ``n (b t) d`` and ``t (b n) d`` around every temporal pass, LayerNorm cast to fp32, the
reference's module and parameter names (MMAction2 layout: ``backbone.*`` + ``cls_head.fc_cls``), so its state dict is
a released-checkpoint layout that ``vidapter convert aim-official`` reads. Used by tests/adapters/test_aim_reference.py
and tests/test_optim.py (same logits and parameter names as vidapter) and by benchmarks/model/ (speed and memory
side by side, benchmarks/_core/aim_pair.py).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from einops import rearrange
from torch import nn


class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Adapter(nn.Module):
    def __init__(self, d, mlp_ratio=0.25, skip_connect=True):
        super().__init__()
        self.skip_connect = skip_connect
        self.act = nn.GELU()
        self.D_fc1 = nn.Linear(d, int(d * mlp_ratio))
        self.D_fc2 = nn.Linear(int(d * mlp_ratio), d)

    def forward(self, x):
        xs = self.D_fc2(self.act(self.D_fc1(x)))
        return x + xs if self.skip_connect else xs


class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        # timm's drop_path draws along dim 0; the reference is sequence-first (n, b*t, d), so its mask is per token
        # position. vidapter (batch-first) draws per frame; both are the identity in eval mode.
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty(x.shape[0], 1, 1).bernoulli_(keep)
        return x * mask.div_(keep)  # timm's drop_path


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, n_head, num_frames, scale, num_tadapter, drop_path=0.0):
        super().__init__()
        self.num_frames, self.scale, self.num_tadapter = num_frames, scale, num_tadapter
        self.drop_path = DropPath(drop_path)
        self.attn = nn.MultiheadAttention(d, n_head)
        self.ln_1 = LayerNorm(d)
        self.mlp = nn.Sequential(
            OrderedDict([("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))])
        )
        self.ln_2 = LayerNorm(d)
        self.MLP_Adapter = Adapter(d, skip_connect=False)
        self.S_Adapter = Adapter(d)
        self.T_Adapter = Adapter(d, skip_connect=False)
        if num_tadapter == 2:
            self.T_Adapter_in = Adapter(d)

    def attention(self, x):
        return self.attn(x, x, x, need_weights=False, attn_mask=None)[0]

    def forward(self, x):  # (n, b*t, d)
        n, bt, d = x.shape
        xt = rearrange(x, "n (b t) d -> t (b n) d", t=self.num_frames)
        if self.num_tadapter == 2:
            xt = self.T_Adapter(self.attention(self.T_Adapter_in(self.ln_1(xt))))
        else:
            xt = self.T_Adapter(self.attention(self.ln_1(xt)))
        xt = rearrange(xt, "t (b n) d -> n (b t) d", n=n)
        x = x + self.drop_path(xt)
        x = x + self.S_Adapter(self.attention(self.ln_1(x)))
        xn = self.ln_2(x)
        return x + self.mlp(xn) + self.drop_path(self.scale * self.MLP_Adapter(xn))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, num_frames, scale, num_tadapter, drop_path_rate=0.0):
        super().__init__()
        rates = torch.linspace(0, drop_path_rate, layers).tolist()
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads, num_frames, scale, num_tadapter, r) for r in rates]
        )

    def forward(self, x):
        return self.resblocks(x)


class ViT_CLIP(nn.Module):  # noqa: N801 (the reference's name)
    def __init__(self, input_resolution, num_frames, patch_size, width, layers, heads, scale, num_tadapter,
                 drop_path_rate=0.0):  # fmt: skip
        super().__init__()
        self.num_frames = num_frames
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        s = width**-0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.temporal_embedding = nn.Parameter(torch.zeros(1, num_frames, width))
        self.transformer = Transformer(width, layers, heads, num_frames, scale, num_tadapter, drop_path_rate)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(s * torch.randn(width, 8))  # kept in the checkpoint, unused

    def forward(self, x):
        b, c, t, h, w = x.shape
        x = rearrange(x, "b c t h w -> (b t) c h w")
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        n = x.shape[1]
        x = rearrange(x, "(b t) n d -> (b n) t d", t=self.num_frames)
        x = x + self.temporal_embedding
        x = rearrange(x, "(b n) t d -> (b t) n d", n=n)
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_post(x)[:, 0]
        return rearrange(x, "(b t) d -> b d t", b=b, t=t).unsqueeze(-1).unsqueeze(-1)  # (B, D, T, 1, 1)


class I3DHead(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.fc_cls(self.dropout(self.avg_pool(x)).flatten(1))


class Recognizer3D(nn.Module):
    def __init__(self, backbone, cls_head):
        super().__init__()
        self.backbone, self.cls_head = backbone, cls_head

    def forward(self, x):
        return self.cls_head(self.backbone(x))


def freeze_like_aim(model: Recognizer3D) -> None:
    """The reference's trainable set: adapters, temporal embedding, ln_post, head."""
    for name, p in model.named_parameters():
        p.requires_grad_(
            "Adapter" in name or "temporal_embedding" in name or "ln_post" in name or name.startswith("cls_head.")
        )

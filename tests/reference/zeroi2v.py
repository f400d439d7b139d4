"""The reference design of ZeroI2V, as a baseline: an independent transcription of the official model code
(MCG-NJU/ZeroI2V @ f091983e3fed6d60158131c04479fcdd68c80990) written without sharing code with vidapter.

Transcribed: ``mmaction/models/backbones/vit_zero_clip.py`` (``ViT_Zero_CLIP``, ``ResidualAttentionBlock_ZeroI2V``,
``LinearAdapter``), ``mmaction/models/common/stdha.py`` (``STDHA``, ``TemporalShift``; plus the ``long_shift_right``
option of ``stdha_ablation.py``, which ``ViT_Zero_CLIP_ablation`` uses for the SSv2-B and HMDB/UCF-u32 configs),
``mmaction/models/backbones/vit_zero_clip_eval.py`` (``ViT_Zero_CLIP_eval``), ``tools/weight_reparam.py``
(``reparameterize``) and MMAction2 1.x's ``I3DHead`` / ``Recognizer3D`` (forward only).

Sequence-first tokens (N, B*T, D), frames inner ``(b t)``; LayerNorm cast to fp32; QuickGELU; no drop path anywhere
(the official block has it commented out). The block is
``x = x + S_Adapter(STDHA(T_Adapter_in(ln_1(x))))``, then ``x = x + MLP_Adapter_out(mlp(MLP_Adapter(ln_2(x))))``
(``num_tadapter=2``) or ``x = x + mlp(MLP_Adapter(ln_2(x)))`` (``num_tadapter=1``); every adapter is linear
(``x + s * D_fc2(Dropout(D_fc1(x)))``, no activation). STDHA shifts K and V (not Q) along time after the packed
in-projection, on every token (CLS included), starting from a clone (clip edges keep their own frame).
Readout: per-frame CLS -> ``ln_post`` -> (B, D, T, 1, 1) -> I3DHead (average over T, dropout 0.5, ``fc_cls``).

Module and parameter names are the official ones, so ``Recognizer3D.state_dict()`` has the key layout of a released
MMAction2 checkpoint's ``"state_dict"`` (``backbone.*`` + ``cls_head.fc_cls.*``; no ``backbone.proj``: the official
code deletes CLIP's ``proj`` before loading and never creates one). Attention is computed with the explicit
bmm/softmax math of ``torch.nn.functional._scaled_dot_product_attention`` (torch < 2.0), which the official STDHA
calls; set ``STDHA.use_sdpa = True`` for ``F.scaled_dot_product_attention`` (same result up to rounding).

Intended for tests that compare vidapter's ZeroI2V with the reference (same logits, same merge) and for
benchmarks/model/vs_baseline.py-style speed and memory comparisons.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

ADAPTERS = ("T_Adapter_in", "S_Adapter", "MLP_Adapter", "MLP_Adapter_out")
PREFIX = "backbone.transformer.resblocks"


class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class LinearAdapter(nn.Module):
    """``x + scale * D_fc2(dropout(D_fc1(x)))`` (or without ``x`` when ``skip_connect=False``); no activation."""

    def __init__(self, D_features, mlp_ratio=0.25, skip_connect=True, scale=1.0, dropout_rate=0.1):  # noqa: N803
        super().__init__()
        if isinstance(scale, str):  # the official code raises on the (commented-out) learnable scales
            raise NotImplementedError(scale)
        self.skip_connect, self.scale = skip_connect, scale
        hidden = int(D_features * mlp_ratio)
        self.D_fc1 = nn.Linear(D_features, hidden)
        self.dropout = nn.Dropout(dropout_rate)
        self.D_fc2 = nn.Linear(hidden, D_features)

    def forward(self, x):
        xs = self.D_fc2(self.dropout(self.D_fc1(x)))
        return x + xs * self.scale if self.skip_connect else xs * self.scale


class TemporalShift(nn.Module):
    """The ``divide_head=False`` path of stdha.py (``ops_type='stdha'`` of stdha_ablation.py), on (N, B*T, C).

    ``fold = C // n_div``: channels [0, fold) read frame t - stride, [fold, 2 fold) read t + stride; with
    ``long_shift_div > 0`` the next ``C // long_shift_div`` channels read t - 2 and, with ``long_shift_right``
    (stdha_ablation.py only), the block after that reads t + 2. Out-of-clip reads keep the frame's own values.
    """

    def __init__(self, num_frames, n_div=8, shift_stride=1, long_shift_div=-1, long_shift_right=False):
        super().__init__()
        self.num_frames, self.fold_div, self.shift_stride = num_frames, n_div, shift_stride
        self.long_shift_div, self.long_shift_right = long_shift_div, long_shift_right

    def forward(self, x):
        n, bt, c = x.shape
        feat = x.view(n, bt // self.num_frames, self.num_frames, c)
        out = feat.clone()
        fold, s = int(c // self.fold_div), self.shift_stride
        out[:, :, s:, :fold] = feat[:, :, :-s, :fold]
        out[:, :, :-s, fold : 2 * fold] = feat[:, :, s:, fold : 2 * fold]
        if self.long_shift_div > 0:
            lf = c // self.long_shift_div
            out[:, :, 2:, 2 * fold : 2 * fold + lf] = feat[:, :, :-2, 2 * fold : 2 * fold + lf]
            if self.long_shift_right:
                out[:, :, :-2, 2 * fold + lf : 2 * fold + 2 * lf] = feat[:, :, 2:, 2 * fold + lf : 2 * fold + 2 * lf]
        return out.view(n, bt, c)


class STDHA(nn.MultiheadAttention):
    """Multi-head attention whose K and V are time-shifted after the in-projection. No extra parameters: the names
    are those of ``nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight/bias``)."""

    use_sdpa = False  # True: F.scaled_dot_product_attention instead of the torch<2.0 explicit math

    def __init__(self, embed_dim, num_heads, num_frames, shift_div=4, shift_stride=1, long_shift_div=-1,
                 long_shift_right=False):  # fmt: skip
        super().__init__(embed_dim=embed_dim, num_heads=num_heads)
        self.time_shift = TemporalShift(num_frames, shift_div, shift_stride, long_shift_div, long_shift_right)

    def forward(self, query, key, value, need_weights=False, attn_mask=None):
        assert attn_mask is None and not need_weights  # the ZeroI2V blocks never use either
        tgt_len, bsz, d = query.shape
        h, hd = self.num_heads, d // self.num_heads
        if query is key and key is value:  # F._in_projection_packed's self-attention path
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            w, b = self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)
            q, k, v = F.linear(query, w[0], b[0]), F.linear(key, w[1], b[1]), F.linear(value, w[2], b[2])
        k, v = self.time_shift(k), self.time_shift(v)  # shift_pattern='kv': Q is not shifted
        q = q.contiguous().view(tgt_len, bsz * h, hd).transpose(0, 1)
        k = k.contiguous().view(k.shape[0], bsz * h, hd).transpose(0, 1)
        v = v.contiguous().view(v.shape[0], bsz * h, hd).transpose(0, 1)
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = torch.bmm(q / math.sqrt(hd), k.transpose(-2, -1)).softmax(dim=-1)
            out = torch.bmm(attn, v)
        out = out.transpose(0, 1).contiguous().view(tgt_len * bsz, d)
        return F.linear(out, self.out_proj.weight, self.out_proj.bias).view(tgt_len, bsz, d), None


def _mlp(d):
    return nn.Sequential(
        OrderedDict([("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))])
    )


class ResidualAttentionBlock_ZeroI2V(nn.Module):  # noqa: N801 (the reference's name)
    def __init__(self, d_model, n_head, scale=1.0, num_tadapter=1, num_frames=8, dropout_rate=0.1, mlp_ratio=0.25,
                 shift_div=12, shift_stride=1, long_shift_div=-1, long_shift_right=False):  # fmt: skip
        super().__init__()
        self.num_tadapter, self.num_frames = num_tadapter, num_frames
        self.attn = STDHA(d_model, n_head, num_frames, shift_div, shift_stride, long_shift_div, long_shift_right)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = _mlp(d_model)
        self.ln_2 = LayerNorm(d_model)

        def adapter():
            return LinearAdapter(d_model, scale=scale, mlp_ratio=mlp_ratio, dropout_rate=dropout_rate)

        # registration order of the official block (it fixes the state-dict key order)
        self.MLP_Adapter = adapter()
        if num_tadapter == 2:
            self.MLP_Adapter_out = adapter()
        self.S_Adapter = adapter()
        self.T_Adapter_in = adapter()

    def attention(self, x):
        return self.attn(x, x, x, need_weights=False, attn_mask=None)[0]

    def forward(self, x):  # (n, b*t, d)
        x = x + self.S_Adapter(self.attention(self.T_Adapter_in(self.ln_1(x))))
        if self.num_tadapter == 2:
            return x + self.MLP_Adapter_out(self.mlp(self.MLP_Adapter(self.ln_2(x))))
        return x + self.mlp(self.MLP_Adapter(self.ln_2(x)))


class ResidualAttentionBlock_Zero(nn.Module):  # noqa: N801 (the reference's name; vit_zero_clip_eval.py)
    """Plain CLIP block with STDHA: what the merged weights load into."""

    def __init__(self, d_model, n_head, num_frames=8, shift_div=4, shift_stride=1, long_shift_div=-1,
                 long_shift_right=False):  # fmt: skip
        super().__init__()
        self.attn = STDHA(d_model, n_head, num_frames, shift_div, shift_stride, long_shift_div, long_shift_right)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = _mlp(d_model)
        self.ln_2 = LayerNorm(d_model)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=None)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.resblocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.resblocks(x)


class _ClipVideoStem(nn.Module):
    """Shared by ViT_Zero_CLIP and ViT_Zero_CLIP_eval (the two official forwards are identical)."""

    def _stem(self, width, input_resolution, patch_size, num_frames):
        self.input_resolution, self.num_frames = input_resolution, num_frames
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        s = width**-0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.temporal_embedding = nn.Parameter(torch.zeros(1, num_frames, width))

    def forward(self, x):
        b, c, t, h, w = x.shape
        assert t == self.num_frames, f"{t} != {self.num_frames}"
        x = self.conv1(rearrange(x, "b c t h w -> (b t) c h w"))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        n = x.shape[1]
        x = rearrange(x, "(b t) n d -> (b n) t d", t=self.num_frames) + self.temporal_embedding  # CLS included
        x = self.ln_pre(rearrange(x, "(b n) t d -> (b t) n d", n=n))
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_post(x[:, 0])  # per-frame CLS, then ln_post
        return rearrange(x, "(b t) d -> b d t", b=b, t=t).unsqueeze(-1).unsqueeze(-1)  # (B, D, T, 1, 1)


class ViT_Zero_CLIP(_ClipVideoStem):  # noqa: N801 (the reference's name)
    """The training-time backbone. Official defaults: dropout_rate 0.1, num_tadapter 1, adapter_scale 0.5,
    mlp_ratio 0.25, and ``stdha_cfg`` defaults shift_div 12, shift_stride 1, long_shift_div -1 (off).
    ``shift_div``, ``shift_stride``, ``long_shift_div`` are the official ``stdha_cfg`` keys; ``long_shift_right``
    exists only in ``ViT_Zero_CLIP_ablation``/``STDHA_ablation`` (whose configs must add ``ops_type='stdha'``).
    """

    def __init__(self, input_resolution, num_frames, patch_size, width, layers, heads, dropout_rate=0.1,
                 num_tadapter=1, adapter_scale=0.5, mlp_ratio=0.25, shift_div=12, shift_stride=1, long_shift_div=-1,
                 long_shift_right=False):  # fmt: skip
        super().__init__()
        self.layers = layers
        self._stem(width, input_resolution, patch_size, num_frames)
        blocks = [
            ResidualAttentionBlock_ZeroI2V(width, heads, adapter_scale, num_tadapter, num_frames, dropout_rate,
                                           mlp_ratio, shift_div, shift_stride, long_shift_div, long_shift_right)
            for _ in range(layers)
        ]  # fmt: skip
        self.transformer = Transformer(blocks)
        self.ln_post = LayerNorm(width)

    def init_weights(self) -> None:
        """The official init without the CLIP download: trunc_normal(0.02)/zero bias on every nn.Linear (out_proj
        and the adapters included; in_proj_weight is a bare Parameter and keeps MHA's xavier init), LayerNorms to
        1/0, then D_fc2 of every adapter to zero (each adapter starts as the identity)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0)
                nn.init.constant_(m.weight, 1.0)
        for name, m in self.transformer.named_modules():
            if "Adapter" in name and isinstance(m, LinearAdapter):
                nn.init.constant_(m.D_fc2.weight, 0)
                nn.init.constant_(m.D_fc2.bias, 0)


class ViT_Zero_CLIP_eval(_ClipVideoStem):  # noqa: N801 (the reference's name)
    """The merged (inference) backbone: plain CLIP blocks + STDHA, temporal_embedding, ln_post.

    Official defaults (vit_zero_clip_eval.py): ``shift_div`` 4 (the training model's default is 12!), shift_stride 1,
    and the long shift is never passed to STDHA (always -1, whatever ``stdha_cfg`` holds). ``long_shift_div`` and
    ``long_shift_right`` here go beyond the official eval model, so that long-shift checkpoints can be evaluated
    with the shifts they were trained with; leave them at -1/False to reproduce the official eval model.
    """

    def __init__(self, input_resolution, num_frames, patch_size, width, layers, heads, *, shift_div=4,
                 shift_stride=1, long_shift_div=-1, long_shift_right=False):  # fmt: skip
        super().__init__()
        self.layers = layers
        self._stem(width, input_resolution, patch_size, num_frames)
        blocks = [
            ResidualAttentionBlock_Zero(width, heads, num_frames, shift_div, shift_stride, long_shift_div,
                                        long_shift_right)
            for _ in range(layers)
        ]  # fmt: skip
        self.transformer = Transformer(blocks)
        self.ln_post = LayerNorm(width)


class I3DHead(nn.Module):
    def __init__(self, num_classes, in_channels, dropout_ratio=0.5, init_std=0.01):
        super().__init__()
        self.init_std = init_std
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio != 0 else None
        self.fc_cls = nn.Linear(in_channels, num_classes)
        self.avg_pool = nn.AdaptiveAvgPool3d((1, 1, 1))  # spatial_type='avg'

    def init_weights(self) -> None:
        nn.init.normal_(self.fc_cls.weight, 0, self.init_std)
        nn.init.constant_(self.fc_cls.bias, 0)

    def forward(self, x):  # (B, D, T, 1, 1)
        x = self.avg_pool(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc_cls(x.view(x.shape[0], -1))


class Recognizer3D(nn.Module):
    def __init__(self, backbone, cls_head):
        super().__init__()
        self.backbone, self.cls_head = backbone, cls_head

    def forward(self, x):  # (B, C, T, H, W) -> logits (B, K)
        return self.cls_head(self.backbone(x))


def freeze_like_zeroi2v(model: Recognizer3D) -> None:
    """The official trainable set: names containing temporal_embedding, ln_post, cls_head or Adapter."""
    for name, p in model.named_parameters():
        p.requires_grad_(any(k in name for k in ("temporal_embedding", "ln_post", "cls_head", "Adapter")))


def official_checkpoint(model: Recognizer3D, meta: dict | None = None) -> dict:
    """What MMAction2 1.x (mmengine CheckpointHook) writes, reduced to what loaders read."""
    if meta is None:
        meta = {"mmengine_version": "0.7.0", "epoch": 40, "iter": 0, "seed": 0,
                "experiment_name": "CLIP-B_k400_8x16x1", "cfg": "model = dict(type='Recognizer3D', ...)"}  # fmt: skip
    return {"meta": meta, "state_dict": model.state_dict(), "optimizer": {}}


def reparameterize_LinearAdapter(D_fc1_W, D_fc2_W, D_fc1_b=None, D_fc2_b=None, scale=1.0, skip_connect=True):  # noqa: N802, N803
    """(W, b) with ``adapter(x) = W x + b``: W = s W2 W1 (+ I), b = s (W2 b1 + b2). Computed in the input dtype."""
    new_w = (D_fc2_W @ D_fc1_W) * scale
    if skip_connect:
        new_w = new_w + torch.eye(D_fc1_W.shape[1], D_fc2_W.shape[0], dtype=new_w.dtype, device=new_w.device)
    if D_fc1_b is None and D_fc2_b is None:
        return new_w, None
    new_b = D_fc2_W @ D_fc1_b if D_fc1_b is not None else 0
    if D_fc2_b is not None:
        new_b = new_b + D_fc2_b
    return new_w, new_b * scale


def fuse_Adapter2Proj(adapter_W, proj_W, adapter_b=None, proj_b=None, adapter_first=True):  # noqa: N802, N803
    """adapter before the projection: (W_p A, W_p a + b_p); after it: (A W_p, A b_p + a)."""
    if adapter_first:
        return reparameterize_LinearAdapter(adapter_W, proj_W, adapter_b, proj_b, scale=1.0, skip_connect=False)
    return reparameterize_LinearAdapter(proj_W, adapter_W, proj_b, adapter_b, scale=1.0, skip_connect=False)


def reparameterize(state_dict: dict, scale: float, num_tadapter: int, num_layers: int, skip_connect: bool = True):
    """tools/weight_reparam.py ``reparam_vit_zero_clip`` on a Recognizer3D state dict (``backbone.*`` keys).

    Returns a new dict (the official function edits its argument in place and returns None): T_Adapter_in is
    folded into ``attn.in_proj_*`` (adapter first), S_Adapter into ``attn.out_proj.*`` (after), MLP_Adapter into
    ``mlp.c_fc.*`` (first) and, with ``num_tadapter == 2``, MLP_Adapter_out into ``mlp.c_proj.*`` (after); the adapter
    keys are removed. Everything else (temporal_embedding, ln_post, cls_head, ...) is passed through.
    ``scale`` must be the training ``adapter_scale`` (the official __main__ hard-codes 0.5; SSv2 configs use 1).
    """
    sd = dict(state_dict)
    targets = [("T_Adapter_in", "attn.in_proj_weight", "attn.in_proj_bias", True),
               ("S_Adapter", "attn.out_proj.weight", "attn.out_proj.bias", False),
               ("MLP_Adapter", "mlp.c_fc.weight", "mlp.c_fc.bias", True)]  # fmt: skip
    if num_tadapter == 2:
        targets.append(("MLP_Adapter_out", "mlp.c_proj.weight", "mlp.c_proj.bias", False))
    for i in range(num_layers):
        p = f"{PREFIX}.{i}"
        for name, wk, bk, first in targets:
            w1, w2 = sd.pop(f"{p}.{name}.D_fc1.weight"), sd.pop(f"{p}.{name}.D_fc2.weight")
            b1, b2 = sd.pop(f"{p}.{name}.D_fc1.bias"), sd.pop(f"{p}.{name}.D_fc2.bias")
            aw, ab = reparameterize_LinearAdapter(w1, w2, b1, b2, scale=scale, skip_connect=skip_connect)
            sd[f"{p}.{wk}"], sd[f"{p}.{bk}"] = fuse_Adapter2Proj(aw, sd[f"{p}.{wk}"], ab, sd[f"{p}.{bk}"], first)
    return sd


def to_eval_model(model: Recognizer3D, **shift) -> Recognizer3D:
    """Merged copy of a ViT_Zero_CLIP recognizer: ViT_Zero_CLIP_eval with the training model's shift config
    (overridable through ``shift``: shift_div, shift_stride, long_shift_div, long_shift_right) and the merged
    weights loaded strictly."""
    bb, head = model.backbone, model.cls_head
    blk = bb.transformer.resblocks[0]
    ts = blk.attn.time_shift
    cfg = {"shift_div": ts.fold_div, "shift_stride": ts.shift_stride, "long_shift_div": ts.long_shift_div,
           "long_shift_right": ts.long_shift_right, **shift}  # fmt: skip
    width, patch = bb.conv1.out_channels, bb.conv1.kernel_size[0]
    ev = ViT_Zero_CLIP_eval(bb.input_resolution, bb.num_frames, patch, width, bb.layers, blk.attn.num_heads, **cfg)
    drop = head.dropout.p if head.dropout is not None else 0
    out = Recognizer3D(ev, I3DHead(head.fc_cls.out_features, width, drop, head.init_std))
    scale = blk.S_Adapter.scale
    out.load_state_dict(reparameterize(model.state_dict(), scale, blk.num_tadapter, bb.layers))
    return out.to(next(model.parameters()).device).train(model.training)

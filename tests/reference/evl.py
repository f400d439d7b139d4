"""The reference design of EVL, as a baseline: an independent transcription of model.py, vision_transformer.py and
weight_loaders.py (OpenGVLab/efficient-video-recognition @ b282e8b49e4ecd24f7357361719cf4fa5ab9c40d) written from
the reference code without sharing code with vidapter.

What is kept (behaviour and names):

- The backbone is EVL's own ``VisionTransformer2D`` as it is after ``weight_loaders.load_weights_clip`` re-keys an
  OpenAI-CLIP image tower (``load_clip_visual``): ``in_proj`` split into separate ``q_proj``/``k_proj``/``v_proj``
  Linears, ``conv1`` as a Linear on (C, p, p)-flattened patches with a zero bias, ``ln_pre`` kept, ``ln_post`` and
  ``proj`` dropped. Each block returns a dict: ``out`` (the un-normalised block output), the unscaled per-head ``q``,
  ``k``, ``v`` of ``norm1(x)`` (shape (B*T, L, heads, width // heads)) and ``attn_out``. The backbone is frozen
  (``eval()``, ``requires_grad_(False)``) and held in a plain Python list like the reference, so it is not a
  submodule: ``state_dict()`` holds only ``decoder.*`` and ``proj.*`` under the reference's names.
- The decoder (``EVLDecoder``): one zero-initialised query ``cls_token``; for decoder layer i, the features of backbone
  block ``depth - M + i`` get, **in place** (``+=`` into the backbone's ``out``, which in fp32 aliases it), the
  depthwise temporal conv (reading the original features, all tokens including CLS), the temporal position embedding
  and the temporal cross-attention term (patch rows only), then are flattened to (B, T*L, C) and attended by the
  query.
- The temporal cross-attention: ``A = mean_heads softmax_keys(q_t k_{t-1}^T / sqrt(head_dim))`` over patch tokens, then
  ``X[t, p] = sum_k A[p, k] w1[idx[p, k]]`` for t >= 1, likewise with ``k_{t+1}`` and ``w2`` for t <= T-2, where
  ``idx[p, k] = (p // Ws - k // Ws + Hs - 1) * (2 Ws - 1) + (p % Ws - k % Ws + Ws - 1)`` ((Hs, Ws) = patch grid;
  ``w1``/``w2`` have (2Hs-1)(2Ws-1) rows). ``idx_tensor`` is a plain attribute (not a buffer), as in the reference;
  it is built vectorised here, the reference uses a Python double loop with the same formula.
- Pre-norm decoder layers (``x += attn(norm1 x, norm3 F, norm3 F)``, ``x += mlp(norm2 x)``, QuickGELU, dropout before
  ``fc2``) and the new head ``proj`` = LayerNorm -> Dropout(0.5) -> Linear.
- The reference init: zero query, zero ``temporal_pos_embed``, zero ``w1``/``w2``, xavier-uniform attention weights with
  zero biases, xavier-uniform MLP weights with N(0, 1e-6) biases, PyTorch default init for the temporal conv and the
  head. Modules are created in the reference's order with the same init calls, so with the same seed (and the CLIP
  weights passed to the constructor, which builds the backbone before the decoder like the reference) the initial
  decoder and head weights equal the reference's.
- Input (B, 3, T, H, W), normalised; output logits (B, num_classes).

What differs from the reference (all runtime-only; none changes the numbers in fp32):

- fp32 on any device: the reference's hard-coded ``device='cuda'`` in ``TemporalCrossAttention.forward`` follows the
  input's device here, and only the ``freeze_fp32`` backbone mode exists (no ``model_to_fp16``; no ``finetune``).
- The backbone comes from a CLIP state dict in memory (``load_clip_visual``) instead of ``torch.jit.load`` of a file;
  ``backbone_config`` may replace a preset for small test dims. The reference's default ``backbone_name='ViT-B/16'``
  is not a preset; the default here is ``'ViT-B/16-lnpre'``.
- Head dim: the reference never hard-codes 64. The backbone and decoder attention use ``qkv_dim // num_heads`` and the
  cross-attention scales by ``q.size(-1) ** 0.5`` (the backbone's head dim; 64 for both presets). The same here.

Used as the reference design for vidapter's EVL (parity tests load the same weights into both) and for
``official_checkpoint`` files in the layout ``checkpoint.py`` saves (``module.``-prefixed DDP state dict).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from einops import rearrange
from torch import nn

# --- vision_transformer.py ---------------------------------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """Computes in fp32 and casts back (the reference's CLIP LayerNorm; a no-op cast in fp32)."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class Attention(nn.Module):
    """The reference's generalised attention: separate q/k/v/out Linears, softmax over keys, batch-first."""

    def __init__(self, q_in_dim, k_in_dim, v_in_dim, qk_proj_dim, v_proj_dim, num_heads, out_dim,
                 return_all_features=False):  # fmt: skip
        super().__init__()
        self.q_proj = nn.Linear(q_in_dim, qk_proj_dim)
        self.k_proj = nn.Linear(k_in_dim, qk_proj_dim)
        self.v_proj = nn.Linear(v_in_dim, v_proj_dim)
        self.out_proj = nn.Linear(v_proj_dim, out_dim)
        self.num_heads = num_heads
        self.return_all_features = return_all_features
        assert qk_proj_dim % num_heads == 0 and v_proj_dim % num_heads == 0
        for m in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(m.weight)
            nn.init.constant_(m.bias, 0.0)

    def forward(self, q, k, v):  # (N, Lq, C), (N, Lkv, C), (N, Lkv, C)
        h = self.num_heads
        q = rearrange(self.q_proj(q), "n l (h c) -> n l h c", h=h)
        k = rearrange(self.k_proj(k), "n l (h c) -> n l h c", h=h)
        v = rearrange(self.v_proj(v), "n l (h c) -> n l h c", h=h)
        aff = torch.einsum("nqhc,nkhc->nqkh", q / (q.shape[-1] ** 0.5), k).softmax(dim=-2)  # softmax over keys
        mix = torch.einsum("nqlh,nlhc->nqhc", aff, v)
        out = self.out_proj(rearrange(mix, "n q h c -> n q (h c)"))
        if self.return_all_features:
            return {"q": q, "k": k, "v": v, "aff": aff, "out": out}  # q, k unscaled
        return out


class PatchEmbed2D(nn.Module):
    """conv1 as a Linear on (C, pH, pW)-flattened patches (row-major over the grid)."""

    def __init__(self, patch_size=(16, 16), in_channels=3, embed_dim=768):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.in_channels = in_channels
        self.proj = nn.Linear(in_channels * self.patch_size[0] * self.patch_size[1], embed_dim)

    def forward(self, x):  # (B, C, H, W) -> (B, HW/p^2, D)
        p1, p2 = self.patch_size
        assert x.shape[1] == self.in_channels and x.shape[2] % p1 == 0 and x.shape[3] % p2 == 0
        return self.proj(rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p1, p2=p2))


def _mlp(in_dim, mlp_factor, dropout, act):
    hidden = round(mlp_factor * in_dim)
    return nn.Sequential(
        OrderedDict(
            [("fc1", nn.Linear(in_dim, hidden)), ("act", act()), ("dropout", nn.Dropout(dropout)),
             ("fc2", nn.Linear(hidden, in_dim))]
        )
    )  # fmt: skip


def _init_mlp(mlp):
    for m in (mlp.fc1, mlp.fc2):
        nn.init.xavier_uniform_(m.weight)
        nn.init.normal_(m.bias, std=1e-6)


class TransformerEncoderLayer(nn.Module):
    def __init__(self, in_feature_dim=768, qkv_dim=768, num_heads=12, mlp_factor=4.0, mlp_dropout=0.0, act=QuickGELU,
                 return_all_features=False):  # fmt: skip
        super().__init__()
        self.return_all_features = return_all_features
        self.attn = Attention(in_feature_dim, in_feature_dim, in_feature_dim, qkv_dim, qkv_dim, num_heads,
                              in_feature_dim, return_all_features=return_all_features)  # fmt: skip
        self.mlp = _mlp(in_feature_dim, mlp_factor, mlp_dropout, act)
        self.norm1 = LayerNorm(in_feature_dim)
        self.norm2 = LayerNorm(in_feature_dim)
        _init_mlp(self.mlp)

    def forward(self, x):
        x_norm = self.norm1(x)
        if not self.return_all_features:
            x = x + self.attn(x_norm, x_norm, x_norm)
            return x + self.mlp(self.norm2(x))
        a = self.attn(x_norm, x_norm, x_norm)
        x = x + a["out"]
        x = x + self.mlp(self.norm2(x))
        return {"q": a["q"], "k": a["k"], "v": a["v"], "attn_out": a["out"], "out": x}


class TransformerDecoderLayer(nn.Module):
    def __init__(self, in_feature_dim=768, qkv_dim=768, num_heads=12, mlp_factor=4.0, mlp_dropout=0.0, act=QuickGELU):
        super().__init__()
        self.attn = Attention(in_feature_dim, in_feature_dim, in_feature_dim, qkv_dim, qkv_dim, num_heads,
                              in_feature_dim)  # fmt: skip
        self.mlp = _mlp(in_feature_dim, mlp_factor, mlp_dropout, act)
        self.norm1 = LayerNorm(in_feature_dim)
        self.norm2 = LayerNorm(in_feature_dim)
        self.norm3 = LayerNorm(in_feature_dim)
        _init_mlp(self.mlp)

    def forward(self, x, y):  # x: (N, 1, C) query; y: (N, T*L, C) memory
        y_norm = self.norm3(y)
        x = x + self.attn(self.norm1(x), y_norm, y_norm)
        return x + self.mlp(self.norm2(x))


class VisionTransformer2D(nn.Module):
    """EVL's backbone class; with ``return_all_features`` it returns one feature dict per block."""

    def __init__(self, feature_dim=768, input_size=(224, 224), patch_size=(16, 16), num_heads=12, num_layers=12,
                 mlp_factor=4.0, act=QuickGELU, return_all_features=False, ln_pre=False):  # fmt: skip
        super().__init__()
        self.return_all_features = return_all_features
        self.patch_embed = PatchEmbed2D(patch_size=patch_size, embed_dim=feature_dim)
        self.num_patches = (input_size[0] // patch_size[0]) * (input_size[1] // patch_size[1]) + 1
        self.cls_token = nn.Parameter(torch.zeros([feature_dim]))
        self.pos_embed = nn.Parameter(torch.zeros([self.num_patches, feature_dim]))
        self.blocks = nn.ModuleList(
            [TransformerEncoderLayer(feature_dim, feature_dim, num_heads, mlp_factor, act=act,
                                     return_all_features=return_all_features) for _ in range(num_layers)]
        )  # fmt: skip
        self.ln_pre = LayerNorm(feature_dim) if ln_pre else nn.Identity()
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x):  # (N, 3, H, W)
        x = x.to(self.patch_embed.proj.weight.dtype)
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.view(1, 1, -1).repeat(x.shape[0], 1, 1), x], dim=1) + self.pos_embed
        x = self.ln_pre(x)
        if not self.return_all_features:
            for blk in self.blocks:
                x = blk(x)
            return x
        feats = []
        for blk in self.blocks:
            f = blk(x)
            feats.append(f)
            x = f["out"]
        return feats


vit_presets = {
    "ViT-B/16-lnpre": dict(feature_dim=768, input_size=(224, 224), patch_size=(16, 16), num_heads=12, num_layers=12,
                           mlp_factor=4.0, ln_pre=True),
    "ViT-L/14-lnpre": dict(feature_dim=1024, input_size=(224, 224), patch_size=(14, 14), num_heads=16, num_layers=24,
                           mlp_factor=4.0, ln_pre=True),
}  # fmt: skip


def vit_config(width, layers, heads, patch, image_size, mlp_factor=4.0):
    """A ``vit_presets``-style backbone config for other (e.g. tiny) dims; ``patch``, ``image_size``: int or (h, w)."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return dict(feature_dim=width, input_size=pair(image_size), patch_size=pair(patch), num_heads=heads,
                num_layers=layers, mlp_factor=mlp_factor, ln_pre=True)  # fmt: skip


# --- weight_loaders.py -------------------------------------------------------------------------------------------


def clip_to_evl_state_dict(clip_sd):
    """``load_weights_clip`` after ``torch.jit.load(...).visual.state_dict()``: OpenAI names -> VisionTransformer2D."""
    src = {k: v.float() for k, v in clip_sd.items()}
    dst = {
        "cls_token": src["class_embedding"],
        "pos_embed": src["positional_embedding"],
        "patch_embed.proj.weight": src["conv1.weight"].flatten(1),
        "patch_embed.proj.bias": torch.zeros([src["conv1.weight"].shape[0]]),
        "ln_pre.weight": src["ln_pre.weight"],
        "ln_pre.bias": src["ln_pre.bias"],
    }
    i = 0
    while True:
        pre = f"transformer.resblocks.{i}."
        blk = {k[len(pre) :]: v for k, v in src.items() if k.startswith(pre)}
        if not blk:
            break
        d = blk["ln_1.weight"].shape[0]
        for j, name in enumerate(("q", "k", "v")):  # in_proj rows are q | k | v
            dst[f"blocks.{i}.attn.{name}_proj.weight"] = blk["attn.in_proj_weight"][d * j : d * (j + 1)]
            dst[f"blocks.{i}.attn.{name}_proj.bias"] = blk["attn.in_proj_bias"][d * j : d * (j + 1)]
        renames = {
            "attn.out_proj": "attn.out_proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
            "ln_1": "norm1", "ln_2": "norm2",
        }  # fmt: skip
        for s, t in renames.items():
            for p in ("weight", "bias"):
                dst[f"blocks.{i}.{t}.{p}"] = blk[f"{s}.{p}"]
        i += 1
    return dst  # ln_post.* and proj are not used


# --- model.py ----------------------------------------------------------------------------------------------------


class TemporalCrossAttention(nn.Module):
    def __init__(self, spatial_size=(14, 14), feature_dim=768):
        super().__init__()
        self.spatial_size = tuple(spatial_size)
        hs, ws = self.spatial_size
        w_size = (2 * hs - 1) * (2 * ws - 1)
        self.w1 = nn.Parameter(torch.zeros([w_size, feature_dim]))  # previous frame
        self.w2 = nn.Parameter(torch.zeros([w_size, feature_dim]))  # next frame
        pos = torch.arange(hs * ws)
        pi, pj = pos // ws, pos % ws
        i_offs = pi[:, None] - pi[None, :] + hs - 1
        j_offs = pj[:, None] - pj[None, :] + ws - 1
        self.idx_tensor = i_offs * (2 * ws - 1) + j_offs  # (HW, HW) long; plain attribute, not a buffer

    def forward_half(self, q, k, w):  # q, k: (N, T', L, H, D)
        q, k = q[:, :, 1:], k[:, :, 1:]  # patches only
        assert q.shape == k.shape and q.shape[2] == self.spatial_size[0] * self.spatial_size[1]
        attn = torch.einsum("ntqhd,ntkhd->ntqkh", q / (q.shape[-1] ** 0.5), k)
        attn = attn.softmax(dim=-2).mean(dim=-1)  # softmax over keys, mean over heads: (N, T', HW, HW)
        self.idx_tensor = self.idx_tensor.to(w.device)
        return torch.einsum("ntqk,qkc->ntqc", attn, w[self.idx_tensor])

    def forward(self, q, k):  # (N, T, L, H, D) each
        n, t, num_tokens, _, _ = q.shape
        assert num_tokens == self.spatial_size[0] * self.spatial_size[1] + 1
        ret = torch.zeros([n, t, num_tokens, self.w1.shape[-1]], device=q.device)  # reference: device='cuda'
        ret[:, 1:, 1:, :] += self.forward_half(q[:, 1:], k[:, :-1], self.w1)
        ret[:, :-1, 1:, :] += self.forward_half(q[:, :-1], k[:, 1:], self.w2)
        return ret  # CLS rows stay 0


class EVLDecoder(nn.Module):
    def __init__(self, num_frames=8, spatial_size=(14, 14), num_layers=4, in_feature_dim=768, qkv_dim=768,
                 num_heads=12, mlp_factor=4.0, enable_temporal_conv=True, enable_temporal_pos_embed=True,
                 enable_temporal_cross_attention=True, mlp_dropout=0.5):  # fmt: skip
        super().__init__()
        self.enable_temporal_conv = enable_temporal_conv
        self.enable_temporal_pos_embed = enable_temporal_pos_embed
        self.enable_temporal_cross_attention = enable_temporal_cross_attention
        self.num_layers = num_layers
        c = in_feature_dim
        self.decoder_layers = nn.ModuleList(
            [TransformerDecoderLayer(c, qkv_dim, num_heads, mlp_factor, mlp_dropout) for _ in range(num_layers)]
        )
        if enable_temporal_conv:  # depthwise, default (non-zero) init
            self.temporal_conv = nn.ModuleList(
                [nn.Conv1d(c, c, kernel_size=3, stride=1, padding=1, groups=c) for _ in range(num_layers)]
            )
        if enable_temporal_pos_embed:
            self.temporal_pos_embed = nn.ParameterList(
                [nn.Parameter(torch.zeros([num_frames, c])) for _ in range(num_layers)]
            )
        if enable_temporal_cross_attention:
            self.cross_attention = nn.ModuleList([TemporalCrossAttention(spatial_size, c) for _ in range(num_layers)])
        self.cls_token = nn.Parameter(torch.zeros([c]))  # the reference's std-0.02 init is never called

    def forward(self, in_features):  # list of M dicts, 'out': (N, T, L, C), 'q'/'k': (N, T, L, H, D)
        n, t, _, c = in_features[0]["out"].shape
        assert len(in_features) == self.num_layers
        x = self.cls_token.view(1, 1, -1).repeat(n, 1, 1)
        for i in range(self.num_layers):
            frame_features = in_features[i]["out"]  # aliased: the += below write into the backbone's output
            if self.enable_temporal_conv:
                feat = rearrange(in_features[i]["out"], "n t l c -> (n l) c t")  # a copy of the original features
                feat = rearrange(self.temporal_conv[i](feat), "(n l) c t -> n t l c", n=n)
                frame_features += feat
            if self.enable_temporal_pos_embed:
                frame_features += self.temporal_pos_embed[i].view(1, t, 1, c)
            if self.enable_temporal_cross_attention:
                frame_features += self.cross_attention[i](in_features[i]["q"], in_features[i]["k"])
            x = self.decoder_layers[i](x, frame_features.flatten(1, 2))  # memory (N, T*L, C)
        return x  # (N, 1, C)


class EVLTransformer(nn.Module):
    """EVL with a frozen fp32 backbone (held outside the module tree). Input (B, 3, T, H, W) -> logits (B, K).

    ``backbone_config`` (e.g. from ``vit_config``) replaces the preset named by ``backbone_name``. With
    ``clip_state_dict`` the backbone is built here, before the decoder (the reference's order); otherwise call
    ``load_clip_visual(model, clip_sd)`` before the first forward.
    """

    def __init__(self, num_frames=8, backbone_name="ViT-B/16-lnpre", backbone_config=None, clip_state_dict=None,
                 decoder_num_layers=4, decoder_qkv_dim=768, decoder_num_heads=12, decoder_mlp_factor=4.0,
                 num_classes=400, enable_temporal_conv=True, enable_temporal_pos_embed=True,
                 enable_temporal_cross_attention=True, cls_dropout=0.5, decoder_mlp_dropout=0.5):  # fmt: skip
        super().__init__()
        self.decoder_num_layers = decoder_num_layers
        self.backbone_config = dict(backbone_config if backbone_config is not None else vit_presets[backbone_name])
        self.backbone = None
        if clip_state_dict is not None:
            load_clip_visual(self, clip_state_dict)
        cfg = self.backbone_config
        feature_dim = cfg["feature_dim"]
        spatial_size = tuple(x // y for x, y in zip(cfg["input_size"], cfg["patch_size"], strict=True))
        self.decoder = EVLDecoder(
            num_frames=num_frames, spatial_size=spatial_size, num_layers=decoder_num_layers,
            in_feature_dim=feature_dim, qkv_dim=decoder_qkv_dim, num_heads=decoder_num_heads,
            mlp_factor=decoder_mlp_factor, enable_temporal_conv=enable_temporal_conv,
            enable_temporal_pos_embed=enable_temporal_pos_embed,
            enable_temporal_cross_attention=enable_temporal_cross_attention, mlp_dropout=decoder_mlp_dropout,
        )  # fmt: skip
        self.proj = nn.Sequential(
            nn.LayerNorm(feature_dim), nn.Dropout(cls_dropout), nn.Linear(feature_dim, num_classes)
        )

    def _get_backbone(self, x):
        assert self.backbone is not None, "call load_clip_visual(model, clip_sd) first"
        self.backbone[0] = self.backbone[0].to(x.device)
        return self.backbone[0]

    def forward(self, x):  # (B, C, T, H, W)
        backbone = self._get_backbone(x)
        b, _, t, _, _ = x.shape
        x = rearrange(x, "b c t h w -> (b t) c h w")
        features = backbone(x)[-self.decoder_num_layers :]  # the last M blocks
        features = [{k: v.float().view(b, t, *v.shape[1:]) for k, v in f.items()} for f in features]
        x = self.decoder(features)
        return self.proj(x[:, 0, :])


def load_clip_visual(model: EVLTransformer, clip_sd: dict) -> EVLTransformer:
    """Build the frozen backbone from an OpenAI-CLIP image-tower state dict (``_create_backbone``, ``freeze_fp32``)."""
    backbone = VisionTransformer2D(return_all_features=True, **model.backbone_config)
    backbone.load_state_dict(clip_to_evl_state_dict(clip_sd), strict=True)
    backbone.eval().requires_grad_(False)
    model.backbone = [backbone]  # a list: not registered as a submodule
    return model


def random_clip_visual_state_dict(width, layers, heads, patch, image_size, seed=0):
    """A random OpenAI-CLIP ``visual`` state dict (OpenAI names, incl. unused ln_post and proj (width, 8)).

    ``heads`` does not change any shape (in_proj is (3*width, width)); it is accepted for symmetry with ``vit_config``.
    """
    del heads
    g = torch.Generator().manual_seed(seed)
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
    n_tok = (ih // ph) * (iw // pw) + 1

    def rn(*shape, std):
        return torch.randn(*shape, generator=g) * std

    def ln(prefix):
        return {f"{prefix}.weight": 1.0 + rn(width, std=0.1), f"{prefix}.bias": rn(width, std=0.1)}

    s = width**-0.5
    sd = {
        "class_embedding": rn(width, std=s),
        "positional_embedding": rn(n_tok, width, std=s),
        "proj": rn(width, 8, std=s),
        "conv1.weight": rn(width, 3, ph, pw, std=(3 * ph * pw) ** -0.5),
        **ln("ln_pre"),
    }
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        sd.update({
            p + "attn.in_proj_weight": rn(3 * width, width, std=s),
            p + "attn.in_proj_bias": rn(3 * width, std=0.02),
            p + "attn.out_proj.weight": rn(width, width, std=s),
            p + "attn.out_proj.bias": rn(width, std=0.02),
            **ln(p + "ln_1"),
            p + "mlp.c_fc.weight": rn(4 * width, width, std=s),
            p + "mlp.c_fc.bias": rn(4 * width, std=0.02),
            p + "mlp.c_proj.weight": rn(width, 4 * width, std=(4 * width) ** -0.5),
            p + "mlp.c_proj.bias": rn(width, std=0.02),
            **ln(p + "ln_2"),
        })  # fmt: skip
    sd.update(ln("ln_post"))
    return sd


def official_checkpoint(model: EVLTransformer, next_step: int = 100) -> dict:
    """What checkpoint.save_checkpoint writes: the DDP state dict (``module.`` prefix; no backbone, no idx_tensor).

    The optimizer / scheduler / scaler states are empty placeholders here (the reference saves the real ones and its
    ``--resume_path`` loader calls ``optimizer.load_state_dict`` whenever an ``optimizer`` key is present).
    """
    return {
        "model": {"module." + k: v for k, v in model.state_dict().items()},
        "optimizer": {},
        "lr_sched": {},
        "loss_scaler": {},
        "next_step": next_step,
    }

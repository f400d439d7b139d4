"""2D RoPE matches timm's own tables and rotation, per family, and cancels between tokens at one position."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import apply_rot_embed_cat
from torch import nn

from vidapter.models.rope import ROPE_KINDS, Rope

# kind -> (timm model, tiny kwargs, ref grid). Grids 4 and 5 differ from the reference grids (16, 14), so the
# coordinate rescaling is exercised; DINOv3 has no reference grid.
TIMM = {
    "eva02": ("eva02_base_patch16_clip_224", dict(img_size=32, patch_size=8), 16),
    "pe": ("vit_pe_core_base_patch16_224", dict(img_size=40, patch_size=8), 14),
    "dinov3": ("vit_small_patch16_dinov3", dict(img_size=48, patch_size=8), 0),
}
HEADS, HEAD_DIM = 4, 16


@functools.cache
def tiny(kind: str):
    """A one-block timm model of the family, eval mode, with its rope table as its forward builds it."""
    name, kwargs, _ = TIMM[kind]
    with torch.random.fork_rng():  # seeded weights without moving the global RNG other tests draw from
        torch.manual_seed(0)
        model = timm.create_model(
            name, pretrained=False, num_classes=0, embed_dim=HEADS * HEAD_DIM, depth=1, num_heads=HEADS, **kwargs
        ).eval()
        with torch.no_grad():  # non-zero biases and norm affines, so nothing is checked against an identity
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    grid = kwargs["img_size"] // kwargs["patch_size"]
    with torch.no_grad():
        _, rope = model._pos_embed(model.patch_embed(torch.zeros(1, 3, kwargs["img_size"], kwargs["img_size"])))
    return model, rope, grid


def ours(kind: str) -> Rope:
    model, _, _ = tiny(kind)
    return Rope(kind, HEAD_DIM, TIMM[kind][2], prefix=model.num_prefix_tokens)


def timm_rotate(attn: nn.Module, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """What timm's EvaAttention / AttentionRope do to q and k."""
    npt = attn.num_prefix_tokens
    return torch.cat([x[:, :, :npt], apply_rot_embed_cat(x[:, :, npt:], rope, half=attn.rotate_half)], dim=2)


@pytest.mark.parametrize("kind", ROPE_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_apply_matches_timm_rotation(kind, dtype):
    model, rope, grid = tiny(kind)
    r = ours(kind)
    assert r.prefix == {"eva02": 1, "pe": 1, "dinov3": 5}[kind] == model.blocks[0].attn.num_prefix_tokens
    q = torch.randn(2, HEADS, r.prefix + grid * grid, HEAD_DIM, generator=torch.Generator().manual_seed(3)).to(dtype)
    out, ref = r.apply(q, r.tables(grid)), timm_rotate(model.blocks[0].attn, q, rope)
    assert out.shape == q.shape and out.dtype == dtype
    assert torch.equal(out[:, :, : r.prefix], q[:, :, : r.prefix])
    atol = 1e-6 if dtype == torch.float32 else 0.0  # same fp32 arithmetic and one final cast, so bf16 matches too
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", ROPE_KINDS)
def test_apply_matches_timm_at_the_native_size(kind):
    """The named models as timm defines them (head_dim 64, 224 px, 14 x 14 patches), one block deep."""
    name, _, ref_grid = TIMM[kind]
    model = timm.create_model(name, pretrained=False, num_classes=0, depth=1).eval()
    with torch.no_grad():
        _, rope = model._pos_embed(model.patch_embed(torch.zeros(1, 3, 224, 224)))
    r = Rope(kind, 64, ref_grid, prefix=model.num_prefix_tokens)
    q = torch.randn(1, 2, r.prefix + 196, 64, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(r.apply(q, r.tables(14)), timm_rotate(model.blocks[0].attn, q, rope), atol=1e-6, rtol=0)


def _qkv(attn: nn.Module, x: torch.Tensor):
    """q, k, v (B, H, N, hd) from the attention's own weights, fused or not."""
    b, n, _ = x.shape
    if attn.qkv is not None:
        bias = attn.qkv.bias
        if getattr(attn, "q_bias", None) is not None:
            bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
        return F.linear(x, attn.qkv.weight, bias).reshape(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    return [p(x).reshape(b, n, attn.num_heads, -1).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj)]


@pytest.mark.parametrize("kind", ROPE_KINDS)
def test_attention_matches_timm_block_attention(kind):
    model, rope, grid = tiny(kind)
    attn, r = model.blocks[0].attn, ours(kind)
    assert isinstance(attn.q_norm, nn.Identity) and attn.gate is None
    x = torch.randn(2, r.prefix + grid * grid, HEADS * HEAD_DIM, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = attn(x, rope=rope)
        q, k, v = _qkv(attn, x)
        tables = r.tables(grid)
        q, k = r.apply(q, tables), r.apply(k, tables)
        y = ((q @ k.transpose(-2, -1)) * HEAD_DIM**-0.5).softmax(-1) @ v
        y = attn.proj(attn.norm(y.transpose(1, 2).flatten(2)))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ROPE_KINDS)
def test_rotation_cancels_between_tokens_at_one_position(kind):
    """q_i . k_j depends on positions only through p_i - p_j, so the tokens of one patch over time (the temporal
    attention of a divided space-time block) see the same attention with or without RoPE."""
    hd, grid, t = 64, 14, 8
    r = Rope(kind, hd, ref_grid={"eva02": 16, "pe": 14, "dinov3": 0}[kind], prefix=0)
    sin, cos = r.tables(grid)
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 3, t, hd, generator=g), torch.randn(2, 3, t, hd, generator=g)

    def attention(tables):
        qr, kr = (q, k) if tables is None else (r.apply(q, tables), r.apply(k, tables))
        return ((qr @ kr.transpose(-2, -1)) * hd**-0.5).softmax(-1)

    plain = attention(None)
    patch = grid * grid - 1  # the far corner: the largest angles
    same = attention((sin[patch].expand(t, -1), cos[patch].expand(t, -1)))
    torch.testing.assert_close(same, plain, atol=1e-5, rtol=0)
    # Not vacuous: tokens at distinct positions do change the attention.
    distinct = attention((sin[patch - t + 1 :], cos[patch - t + 1 :]))
    assert (distinct - plain).abs().max() > 1e-2


def test_rope_is_stateless_and_checks_its_arguments():
    assert not isinstance(Rope("eva02", 64, 16, 1), nn.Module)
    sin, cos = Rope("dinov3", 64, 0, 5).tables(14)
    assert sin.shape == cos.shape == (196, 32) and sin.dtype == torch.float32
    r = Rope("eva02", 16, 16, 1)
    with torch.inference_mode():  # a cached table built during evaluation must still serve a training step
        r.tables(4)
    q = torch.randn(1, 2, 17, 16, requires_grad=True)
    r.apply(q, r.tables(4)).sum().backward()
    assert q.grad is not None
    with pytest.raises(ValueError, match="kind"):
        Rope("rope2d", 64, 16, 1)
    with pytest.raises(ValueError, match="multiple of 4"):
        Rope("pe", 62, 14, 1)

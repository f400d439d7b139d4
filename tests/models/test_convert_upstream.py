"""Upstream layouts -> canonical names: tiny random peers (timm, open_clip) and state-dict producers for the originals.

``CASES`` lists, per published layout, how to build a random peer and its state dict in that layout, the timm model of
the same shape, and the peer's pooled image feature (before any image-to-text projection). Each case is converted,
loaded into the timm model (canonical -> timm names by ``canonical_to_timm``, strict) and compared to the peer's own
feature. The originals (DINOv2, DINOv3, PE, EVA-CLIP) have no package here: a producer re-keys a random timm model's
state dict into the original layout by an inverse mapping written from the upstream source, and the conversion must
give back timm's canonical state dict exactly. A few upstream modules are transcribed to check the math behind the
renames (EVA's and DINOv2's SwiGLU, PE's attention pool).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import NamedTuple
from unittest import mock

import open_clip
import pytest
import timm
import torch
import torch.nn.functional as F
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_
from timm.models.eva import Eva
from torch import Tensor, nn

from vidapter.models.convert import ConversionError
from vidapter.models.layouts import detect_layout, image_layouts

CONVERTERS = image_layouts()  # every image layout's converter, by name

TINY = dict(embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, img_size=SIZE, patch_size=PATCH)
TINY_TEXT = dict(context_length=8, vocab_size=100, width=32, heads=2, layers=1)
PROJ = 32  # width of the image-to-text projections that the conversion drops
ORIGINALS = ("dinov2", "dinov3", "pe", "eva_clip")


class Case(NamedTuple):
    id: str
    fmt: str  # the converter; also the layout detect_upstream names, except "timm_vit" (left to detect_format)
    make: Callable[[], tuple[nn.Module, dict[str, Tensor]]]  # a random peer and its state dict, published layout
    timm_name: str  # the timm model of the same shape that takes the converted weights
    timm_kwargs: dict
    features: Callable[[nn.Module, Tensor], Tensor]  # the peer's pooled image feature


def pooled(model: nn.Module, x: Tensor) -> Tensor:
    """A timm model's pooled feature before its head (the classifier or image-to-text projection)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def trunk_pooled(model: nn.Module, x: Tensor) -> Tensor:
    """An open_clip timm-backed CLIP: ``encode_image`` without the projection (the trunk's ``head``)."""
    return pooled(model.visual.trunk, x)


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g: torch.Generator, *shape: int) -> Tensor:
    return 0.1 * torch.randn(shape, generator=g)


def _timm(name: str, kwargs: dict, seed: int = 0, **peer_kwargs) -> nn.Module:
    model = timm.create_model(name, pretrained=False, **{**TINY, **kwargs, **peer_kwargs})
    assert not any(k.startswith("fc_norm") for k in model.state_dict())  # a final norm over all tokens, not fc_norm
    return randomize_(model, seed).eval()


def _timm_file(name: str, kwargs: dict, **peer_kwargs) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:
    def make():
        model = _timm(name, kwargs, **peer_kwargs)
        return model, dict(model.state_dict())

    return make


def _open_clip(name: str, embed_dim: int, text: dict = TINY_TEXT,
               trunk: dict | None = None) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:  # fmt: skip
    """open_clip's own config and TimmModel wiring, the timm trunk built at the tiny size (and ``trunk``'s keywords),
    the text tower tiny."""

    def make():
        text_cfg = {**open_clip.get_model_config(name)["text_cfg"], **text}
        with mock.patch.object(timm, "create_model", partial(timm.create_model, **TINY, **(trunk or {}))):
            model = open_clip.create_model(name, pretrained=None, embed_dim=embed_dim, text_cfg=text_cfg)
        model = randomize_(model).eval()
        return model, dict(model.state_dict())

    return make


def _text_tower(g: torch.Generator, prefix: str) -> dict[str, Tensor]:
    """A one-layer CLIP text tower (open_clip / EVA-CLIP / PE TextTransformer names) beside the image tower."""
    r = f"{prefix}transformer.resblocks.0."
    w = TINY_TEXT["width"]
    return {
        f"{prefix}token_embedding.weight": _randn(g, TINY_TEXT["vocab_size"], w),
        f"{prefix}positional_embedding": _randn(g, TINY_TEXT["context_length"], w),
        **{f"{r}{n}.{b}": _randn(g, w) for n in ("ln_1", "ln_2") for b in ("weight", "bias")},
        f"{r}attn.in_proj_weight": _randn(g, 3 * w, w),
        f"{r}attn.in_proj_bias": _randn(g, 3 * w),
        f"{r}attn.out_proj.weight": _randn(g, w, w),
        f"{r}attn.out_proj.bias": _randn(g, w),
        f"{r}mlp.c_fc.weight": _randn(g, 4 * w, w),
        f"{r}mlp.c_fc.bias": _randn(g, 4 * w),
        f"{r}mlp.c_proj.weight": _randn(g, w, 4 * w),
        f"{r}mlp.c_proj.bias": _randn(g, w),
        f"{prefix}ln_final.weight": _randn(g, w),
        f"{prefix}ln_final.bias": _randn(g, w),
        f"{prefix}text_projection": _randn(g, w, PROJ),
        f"{prefix}logit_scale": torch.tensor(4.6),
    }


# --- producers of the original layouts, each written from the upstream source (commits in convert_upstream.py) ---


def _dinov2(name: str, kwargs: dict, chunks: int = 0) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:
    """dinov2/models/vision_transformer.py DinoVisionTransformer: cls_token, pos_embed (1 + HW, the CLS slot even with
    registers, which are inserted after the positions are added), register_tokens, mask_token (1, D),
    blocks[.chunk].N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1/fc2 or mlp.w12/w3, ls2.gamma}, norm."""

    def make():
        model, g = _timm(name, kwargs), _gen()
        t = {k: v.clone() for k, v in model.state_dict().items()}
        sd = {"cls_token": t.pop("cls_token"), "mask_token": _randn(g, 1, WIDTH)}
        if "reg_token" in t:
            cls_pos = _randn(g, 1, 1, WIDTH)
            sd["register_tokens"] = t.pop("reg_token")
            sd["pos_embed"] = torch.cat([cls_pos, t.pop("pos_embed")], dim=1)
            with torch.no_grad():
                model.cls_token.add_(cls_pos)  # the peer now computes what the original does
        swiglu = "giant" in name  # ViT-g: SwiGLUFFNFused
        for k, v in t.items():
            m = re.fullmatch(r"blocks\.(\d+)\.(.+)", k)
            if m is None:
                sd[k] = v
                continue
            i, rest = int(m.group(1)), m.group(2)
            if swiglu:
                rest = rest.replace("mlp.fc1.", "mlp.w12.").replace("mlp.fc2.", "mlp.w3.")
            # BlockChunk: chunk c holds Identity * (c * size) then its blocks, so the inner index is the global one
            block = f"blocks.{i // (DEPTH // chunks)}.{i}." if chunks else f"blocks.{i}."
            sd[block + rest] = v
        return model, sd

    return make


def _dinov3(name: str, kwargs: dict) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:
    """dinov3/models/vision_transformer.py: cls_token, storage_tokens, mask_token (1, D), rope_embed.periods,
    blocks.N.{norm1, attn.qkv.weight, attn.qkv.bias + bias_mask (LinearKMaskedBias, [1; 0; 1]), attn.proj, ls1.gamma,
    norm2, mlp.fc1/fc2 or SwiGLUFFN mlp.w1 (SiLU gate) / w2 / w3 (S+, H+, 7B), ls2.gamma}, norm. The k bias in the
    file is anything; the mask zeroes it."""
    swiglu = "plus" in name

    def make():
        model, g = _timm(name, kwargs), _gen()
        sd = {"mask_token": _randn(g, 1, WIDTH), "rope_embed.periods": _randn(g, WIDTH // HEADS // 4)}
        t = {k: v.clone() for k, v in model.state_dict().items()}
        for i in range(DEPTH):
            p = f"blocks.{i}.attn."
            sd[p + "qkv.bias"] = torch.cat([t.pop(p + "q_bias"), _randn(g, WIDTH), t.pop(p + "v_bias")])
            sd[p + "qkv.bias_mask"] = torch.cat([torch.ones(WIDTH), torch.zeros(WIDTH), torch.ones(WIDTH)])
        names = {"reg_token": "storage_tokens", "gamma_1": "ls1.gamma", "gamma_2": "ls2.gamma"}
        names.update({"mlp.fc1_g.": "mlp.w1.", "mlp.fc1_x.": "mlp.w2.", "mlp.fc2.": "mlp.w3."} if swiglu else {})
        for k, v in t.items():
            for a, b in names.items():
                k = k.replace(a, b)
            sd[k] = v
        return model, sd

    return make


_PE_BLOCK = {"norm1": "ln_1", "attn.qkv": "attn.in_proj", "attn.proj": "attn.out_proj", "norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}  # fmt: skip
_PE_POOL = {"proj": "attn.out_proj", "norm": "layernorm", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def pe_names(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A timm PE-Core state dict (no head) in the original image tower's names, without ``proj``."""
    t = {k: v.clone() for k, v in state_dict.items()}
    sd = {"conv1.weight": t.pop("patch_embed.proj.weight"), "positional_embedding": t.pop("pos_embed")[0]}
    if "cls_token" in t:
        sd["class_embedding"] = t.pop("cls_token").reshape(-1)
    for b in ("weight", "bias"):
        sd[f"attn_pool.attn.in_proj_{b}"] = torch.cat([t.pop(f"attn_pool.q.{b}"), t.pop(f"attn_pool.kv.{b}")])
    sd["attn_pool.probe"] = t.pop("attn_pool.latent")
    for k, v in t.items():
        if m := re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", k):
            sep = "_" if m.group(2) == "attn.qkv" else "."
            sd[f"transformer.resblocks.{m.group(1)}.{_PE_BLOCK[m.group(2)]}{sep}{m.group(3)}"] = v
        elif m := re.fullmatch(r"attn_pool\.(.+)\.(weight|bias)", k):
            sd[f"attn_pool.{_PE_POOL[m.group(1)]}.{m.group(2)}"] = v
        else:
            sd[{"norm_pre": "ln_pre", "norm": "ln_post"}[k.split(".")[0]] + "." + k.split(".")[1]] = v
    return sd


def _pe(name: str, kwargs: dict, full_clip: bool) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:
    """core/vision_encoder/pe.py VisionTransformer: conv1 (no bias), class_embedding (D,) (B/L only),
    positional_embedding (N, D), ln_pre, transformer.resblocks.N.{ln_1, attn.in_proj_weight/bias (SelfAttention, the
    nn.MultiheadAttention names), attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_post, attn_pool.{probe (1, 1, D),
    attn (nn.MultiheadAttention: in_proj_weight/bias, out_proj), layernorm, mlp.c_fc/c_proj}, proj (D, out). The
    CLIP file has ``visual.`` and the text tower beside it."""

    def make():
        model, g = _timm(name, kwargs), _gen()
        sd = {**pe_names(model.state_dict()), "proj": _randn(g, WIDTH, PROJ)}
        if full_clip:
            sd = {**{"visual." + k: v for k, v in sd.items()}, **_text_tower(g, "")}
        return model, sd

    return make


_EVA_NAMES = {
    "attn.q_proj.bias": "attn.q_bias",
    "attn.v_proj.bias": "attn.v_bias",
    "attn.norm.": "attn.inner_attn_ln.",
    "mlp.fc1_g.": "mlp.w1.",
    "mlp.fc1_x.": "mlp.w2.",
    "mlp.norm.": "mlp.ffn_ln.",
    "mlp.fc2.": "mlp.w3.",
}


def _eva_clip(name: str, kwargs: dict) -> Callable[[], tuple[nn.Module, dict[str, Tensor]]]:
    """EVA-CLIP/rei/eva_clip/eva_vit_model.py EVAVisionTransformer (subln, naiveswiglu, rope, qkv_bias): cls_token,
    pos_embed, patch_embed.proj, blocks.N.{norm1, attn.{q,k,v}_proj.weight (no bias), attn.q_bias, attn.v_bias,
    attn.inner_attn_ln, attn.proj, norm2, mlp.{w1 (SiLU gate), w2, ffn_ln, w3}}, norm, head (Linear with bias), the
    RoPE buffers (persistent; the shared module saved again under every block); CustomCLIP puts the text under
    ``text.``."""

    def make():
        model, g = _timm(name, kwargs), _gen()
        grid, head_dim = (SIZE // PATCH) ** 2, WIDTH // HEADS
        sd = {"head.weight": _randn(g, PROJ, WIDTH), "head.bias": _randn(g, PROJ)}
        for k, v in model.state_dict().items():
            for a, b in _EVA_NAMES.items():
                k = k.replace(a, b)
            sd[k] = v.clone()
        for p in ["", *[f"blocks.{i}.attn." for i in range(DEPTH)]]:
            sd[p + "rope.freqs_cos"], sd[p + "rope.freqs_sin"] = _randn(g, grid, head_dim), _randn(g, grid, head_dim)
        sd = {**{"visual." + k: v for k, v in sd.items()}, **_text_tower(g, "text.")}
        return model, sd

    return make


EVA02 = ("eva02_base_patch16_clip_224", dict(num_classes=0, global_pool="token"))
PE_B = ("vit_pe_core_base_patch16_224", dict(num_classes=0))
PE_G = ("vit_pe_core_gigantic_patch14_448", dict(num_classes=0))
DINOV3 = ("vit_small_patch16_dinov3", dict(num_classes=0, global_pool="token"))
DINOV3_QKVB = ("vit_small_patch16_dinov3_qkvb", dict(num_classes=0, global_pool="token"))
DINOV3_SPLUS = ("vit_small_plus_patch16_dinov3_qkvb", dict(num_classes=0, global_pool="token"))  # SwiGLU fc1_g/fc1_x
SIGLIP = ("vit_base_patch16_siglip_224", dict(num_classes=0))
CLIP = ("vit_base_patch16_clip_224", dict(num_classes=0))
DINOV2 = ("vit_base_patch14_dinov2", dict(num_classes=0))
DINOV2_REG = ("vit_base_patch14_reg4_dinov2", dict(num_classes=0))
DINOV2_G = ("vit_giant_patch14_dinov2", dict(num_classes=0, mlp_ratio=4.0))  # hidden 128, packed SwiGLU fc1 (256, D)

CASES = [
    Case("timm-eva02-clip", "timm_eva", _timm_file(*EVA02, num_classes=PROJ), *EVA02, pooled),
    Case("timm-pe-core-b", "timm_vit", _timm_file(*PE_B, num_classes=PROJ), *PE_B, pooled),
    Case("timm-pe-core-g", "timm_vit", _timm_file(*PE_G, num_classes=PROJ), *PE_G, pooled),
    Case("timm-dinov3", "timm_eva", _timm_file(*DINOV3), *DINOV3, pooled),
    Case("timm-dinov3-qkvb", "timm_eva", _timm_file(*DINOV3_QKVB), *DINOV3_QKVB, pooled),
    Case("timm-siglip", "timm_vit", _timm_file(*SIGLIP), *SIGLIP, pooled),
    Case("timm-clip", "timm_vit", _timm_file(*CLIP, num_classes=PROJ), *CLIP, pooled),
    Case("timm-dinov2-reg4", "timm_vit", _timm_file(*DINOV2_REG), *DINOV2_REG, pooled),
    Case("timm-dinov2-g", "timm_vit", _timm_file(*DINOV2_G), *DINOV2_G, pooled),
    Case("open_clip-EVA02-B-16", "open_clip_timm", _open_clip("EVA02-B-16", PROJ), *EVA02, trunk_pooled),
    Case("open_clip-PE-Core-B-16", "open_clip_timm", _open_clip("PE-Core-B-16", PROJ), *PE_B, trunk_pooled),
    Case("open_clip-ViT-B-16-SigLIP", "open_clip_timm", _open_clip("ViT-B-16-SigLIP", WIDTH), *SIGLIP, trunk_pooled),
    Case("dinov2", "dinov2", _dinov2(*DINOV2), *DINOV2, pooled),
    Case("dinov2-reg4", "dinov2", _dinov2(*DINOV2_REG), *DINOV2_REG, pooled),
    Case("dinov2-g", "dinov2", _dinov2(*DINOV2_G), *DINOV2_G, pooled),
    Case("dinov2-chunked", "dinov2", _dinov2(*DINOV2_REG, chunks=1), *DINOV2_REG, pooled),
    Case("dinov3", "dinov3", _dinov3(*DINOV3_QKVB), *DINOV3_QKVB, pooled),
    Case("dinov3-splus", "dinov3", _dinov3(*DINOV3_SPLUS), *DINOV3_SPLUS, pooled),
    Case("pe-core-b-clip", "pe", _pe(*PE_B, full_clip=True), *PE_B, pooled),
    Case("pe-core-g-visual", "pe", _pe(*PE_G, full_clip=False), *PE_G, pooled),
    Case("eva02-clip", "eva_clip", _eva_clip(*EVA02), *EVA02, pooled),
]


def canonical_to_timm(sd: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Canonical names -> the given timm model's. VisionTransformer uses them as they are; the Eva class calls
    LayerScale gamma_1/gamma_2 and has separate q/k/v projections (EVA02), q_bias/v_bias (DINOv3 _qkvb) or no qkv bias
    (DINOv3): there the canonical k bias (or the whole bias) must be zero."""
    want, out = set(model.state_dict()), {}
    for k, v in sd.items():
        ls = re.fullmatch(r"(blocks\.\d+\.)ls([12])\.gamma", k)
        qkv = re.fullmatch(r"(blocks\.\d+\.attn\.)qkv\.(weight|bias)", k)
        if ls and ls.group(1) + "gamma_1" in want:
            out[f"{ls.group(1)}gamma_{ls.group(2)}"] = v
        elif qkv and qkv.group(1) + "qkv." + qkv.group(2) not in want:
            p, (q, k_, v_) = qkv.group(1), v.chunk(3)
            if qkv.group(2) == "weight":
                out.update({p + "q_proj.weight": q, p + "k_proj.weight": k_, p + "v_proj.weight": v_})
                continue
            assert not k_.any(), f"{k}: {type(model).__name__} has no k bias, the canonical one must be zero"
            if p + "q_proj.bias" in want:
                out.update({p + "q_proj.bias": q, p + "v_proj.bias": v_})
            elif p + "q_bias" in want:
                out.update({p + "q_bias": q, p + "v_bias": v_})
            else:
                assert not v.any(), f"{k}: {type(model).__name__} has no qkv bias, the canonical one must be zero"
        else:
            out[k] = v
    return out


def _canonical_keys_ok(sd: dict[str, Tensor]) -> None:
    for i in range(DEPTH):
        assert sd[f"blocks.{i}.attn.qkv.weight"].shape == (3 * WIDTH, WIDTH)
        assert sd[f"blocks.{i}.attn.qkv.bias"].shape == (3 * WIDTH,)
    assert sd["patch_embed.proj.weight"].shape == (WIDTH, 3, PATCH, PATCH)
    assert not any(k.startswith(("head", "visual", "text", "rope")) or "mask" in k for k in sd)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_converted_weights_give_the_peers_features(case: Case):
    peer, published = case.make()
    assert detect_layout(published) == ("timm" if case.fmt == "timm_vit" else case.fmt)
    canonical = CONVERTERS[case.fmt](published)
    _canonical_keys_ok(canonical)
    target = timm.create_model(case.timm_name, pretrained=False, **{**TINY, **case.timm_kwargs}).eval()
    target.load_state_dict(canonical_to_timm(canonical, target), strict=True)
    x = torch.randn(2, 3, SIZE, SIZE, generator=_gen(7))
    with torch.no_grad():
        want, got = case.features(peer, x), pooled(target, x)
    assert want.shape == (2, WIDTH)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if c.fmt in ORIGINALS], ids=lambda c: c.id)
def test_original_converts_to_timms_canonical_state_dict_exactly(case: Case):
    peer, published = case.make()
    want = CONVERTERS["timm_eva" if isinstance(peer, Eva) else "timm_vit"](peer.state_dict())
    got = CONVERTERS[case.fmt](published)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k].dtype != want[k].dtype or not torch.equal(got[k], want[k])] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_unknown_key_raises_naming_it(case: Case):
    _, published = case.make()
    block_key = next(k for k in published if "blocks.0." in k)
    prefix = next((p for p in ("visual.trunk.", "visual.") if block_key.startswith(p)), "")
    extra = block_key[len(prefix) :].split("blocks.0.")[0] + "blocks.0.mystery.weight"
    published[prefix + extra] = torch.zeros(1)
    named = f" \\(under '{re.escape(prefix)}'\\)" if prefix else ""
    with pytest.raises(ConversionError, match=f"^{case.fmt}{named} checkpoint .* does not know: {re.escape(extra)}$"):
        CONVERTERS[case.fmt](published)


@pytest.mark.parametrize("fmt", ["open_clip_timm", "eva_clip"])
def test_unknown_key_beside_the_towers_is_named(fmt):
    case = next(c for c in CASES if c.fmt == fmt)
    _, published = case.make()
    published["mystery.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"outside the image and text towers: mystery\.weight"):
        CONVERTERS[fmt](published)


def test_timm_fc_norm_is_refused():
    """Average pooling with its own fc_norm leaves ``norm`` an identity: not the canonical structure."""
    sd = timm.create_model(DINOV2[0], pretrained=False, **TINY, global_pool="avg", fc_norm=True).state_dict()
    with pytest.raises(ConversionError, match=r"fc_norm\.weight"):
        CONVERTERS["timm_vit"](sd)


def test_dinov2_register_fold_is_exact():
    g, n = _gen(3), 1 + (SIZE // PATCH) ** 2
    sd = {"cls_token": _randn(g, 1, 1, WIDTH), "pos_embed": _randn(g, 1, n, WIDTH), "mask_token": _randn(g, 1, WIDTH)}
    plain = CONVERTERS["dinov2"](sd)
    assert torch.equal(plain["cls_token"], sd["cls_token"]) and torch.equal(plain["pos_embed"], sd["pos_embed"])
    reg = CONVERTERS["dinov2"]({**sd, "register_tokens": _randn(g, 1, 4, WIDTH)})
    assert torch.equal(reg["cls_token"], sd["cls_token"] + sd["pos_embed"][:, :1])
    assert torch.equal(reg["pos_embed"], sd["pos_embed"][:, 1:]) and reg["reg_token"].shape == (1, 4, WIDTH)
    with pytest.raises(ConversionError, match="not 1 \\+ a square grid"):
        CONVERTERS["dinov2"]({**sd, "pos_embed": sd["pos_embed"][:, 1:], "register_tokens": reg["reg_token"]})


def test_a_missing_bias_in_one_block_is_not_filled():
    """Zero biases are added only where the layout has none by design, never for a key lost from one block."""
    _, sd = CASES[0].make()  # timm EVA02: q_proj.bias / v_proj.bias in every block
    del sd["blocks.1.attn.q_proj.bias"]
    with pytest.raises(ConversionError, match=r"blocks\.1\.attn\.qkv\.bias' needs 3 parts, found parts \[2\]"):
        CONVERTERS["timm_eva"](sd)


def test_open_clip_drops_exactly_the_projection():
    """open_clip's timm-backed EVA02 / PE: encode_image is the trunk's head applied to the pooled feature."""
    for name in ("EVA02-B-16", "PE-Core-B-16"):
        model, _ = _open_clip(name, PROJ)()
        x = torch.randn(2, 3, SIZE, SIZE, generator=_gen(5))
        with torch.no_grad():
            torch.testing.assert_close(model.encode_image(x), model.visual.trunk.head(trunk_pooled(model, x)))


# --- the math behind the renames, from transcriptions of the upstream modules ---


@pytest.mark.parametrize(
    "make, prefix, sub_ln",
    [(_eva_clip(*EVA02), "visual.blocks.0.mlp.", True), (_dinov3(*DINOV3_SPLUS), "blocks.0.mlp.", False)],
    ids=["eva02-clip", "dinov3-splus"],
)
def test_swiglu_w1_is_the_gate(make, prefix, sub_ln):
    """EVA-CLIP SwiGLU w3(ffn_ln(silu(w1 x) * w2 x)) and DINOv3 SwiGLUFFN w3(silu(w1 x) * w2 x) equal timm's block MLP
    after conversion."""
    model, sd = make()
    x = torch.randn(5, WIDTH, generator=_gen(2))

    def lin(n, t):
        return F.linear(t, sd[prefix + n + ".weight"], sd[prefix + n + ".bias"])

    hidden = F.silu(lin("w1", x)) * lin("w2", x)
    if sub_ln:
        hidden = F.layer_norm(hidden, hidden.shape[-1:], sd[prefix + "ffn_ln.weight"], sd[prefix + "ffn_ln.bias"], 1e-6)
    with torch.no_grad():
        torch.testing.assert_close(model.blocks[0].mlp(x), lin("w3", hidden), atol=1e-6, rtol=0)


def test_dinov2_packed_swiglu_matches():
    """DINOv2 SwiGLUFFN: x1, x2 = w12(x).chunk(2); w3(silu(x1) * x2)."""
    model, sd = _dinov2(*DINOV2_G)()
    x = torch.randn(5, WIDTH, generator=_gen(2))
    x1, x2 = F.linear(x, sd["blocks.0.mlp.w12.weight"], sd["blocks.0.mlp.w12.bias"]).chunk(2, dim=-1)
    want = F.linear(F.silu(x1) * x2, sd["blocks.0.mlp.w3.weight"], sd["blocks.0.mlp.w3.bias"])
    with torch.no_grad():
        torch.testing.assert_close(model.blocks[0].mlp(x), want, atol=1e-6, rtol=0)


def test_pe_attention_pool_matches():
    """PE AttentionPooling: x = MHA(probe, x, x) (8 heads); x + mlp(layernorm(x)), squeezed; vs timm's pool."""
    model, sd = _pe(*PE_B, full_clip=False)()
    heads = model.attn_pool.num_heads
    mha = nn.MultiheadAttention(WIDTH, heads, batch_first=True)
    mha.load_state_dict({k[len("attn_pool.attn.") :]: v for k, v in sd.items() if k.startswith("attn_pool.attn.")})
    ln = nn.LayerNorm(WIDTH, eps=1e-5)
    ln.load_state_dict({"weight": sd["attn_pool.layernorm.weight"], "bias": sd["attn_pool.layernorm.bias"]})
    tokens = torch.randn(2, 17, WIDTH, generator=_gen(2))
    with torch.no_grad():
        q = sd["attn_pool.probe"].repeat(2, 1, 1)
        y = mha(q, tokens, tokens, need_weights=False)[0]
        h = F.gelu(F.linear(ln(y), sd["attn_pool.mlp.c_fc.weight"], sd["attn_pool.mlp.c_fc.bias"]))
        want = (y + F.linear(h, sd["attn_pool.mlp.c_proj.weight"], sd["attn_pool.mlp.c_proj.bias"])).squeeze(1)
        torch.testing.assert_close(model.attn_pool(tokens), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layout", ["open_clip", "pe"])
def test_pe_core_zero_shot_equals_open_clips(layout, tmp_path):
    """PE-Core's CLIP from open_clip's file (text under ``text.``, the image projection the trunk's Linear head) and
    from Meta's original (OpenAI's names, ``visual.proj``, no bias): zero-shot logits equal open_clip's
    exp(scale) x cos(encode_image, encode_text), the image embedding read from the attention pool, not the class
    token; the text tower's context is PE's 32."""
    from vidapter.models.tokenizer import tokenizer
    from vidapter.zeroshot import zero_shot_model

    text = dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1)  # the tiny_pe_core row's tower
    model, sd = _open_clip("PE-Core-B-16", PROJ, text, {"ref_feat_shape": (4, 4)})()  # the tiny row's RoPE grid
    with torch.no_grad():
        model.visual.trunk.head.bias.zero_()  # the originals' projection has none
    sd = dict(model.state_dict())
    if layout == "pe":
        trunk = {k[len("visual.trunk.") :]: v for k, v in sd.items() if k.startswith("visual.trunk.")}
        proj = trunk.pop("head.weight").T
        del trunk["head.bias"]
        text_sd = {k[len("text.") :]: v for k, v in sd.items() if k.startswith("text.")}
        sd = {**{f"visual.{k}": v for k, v in pe_names(trunk).items()}, "visual.proj": proj, **text_sd,
              "logit_scale": sd["logit_scale"]}  # fmt: skip
    path = tmp_path / "pe.pt"
    torch.save(sd, path)
    names = ["juggling", "tai chi"]
    ours = zero_shot_model(path, names, templates=["a video of {}."], backbone="tiny_pe_core",
                           overrides=["--model.num_frames=1"], trust_pickle=True)  # fmt: skip
    assert ours.feature == "pool" and ours.head.sigmoid is False
    x = torch.randn(2, 3, SIZE, SIZE, generator=_gen(3))
    with torch.no_grad():
        image = F.normalize(model.encode_image(x), dim=-1)
        classes = F.normalize(model.encode_text(tokenizer()([f"a video of {n}." for n in names], context=32)), dim=-1)
        torch.testing.assert_close(ours(x.unsqueeze(2)), model.logit_scale.exp() * image @ classes.T, atol=1e-4,
                                   rtol=1e-5)  # fmt: skip

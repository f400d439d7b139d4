"""The plain image ViT matches each peer library's own output after conversion of its weights."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from einops import rearrange
from peers import PATCH, SIZE, WIDTH, hf_clip_vision, open_clip_model, openai_release_archive, timm_vit

from vidapter.adapters.aim import over_frames
from vidapter.models.convert import hf_clip_to_vit, openai_to_vit, timm_to_vit
from vidapter.models.pretrained import WeightsError, load_backbone
from vidapter.models.vit import BACKBONES, build_vit, resize_pos_embed

ATOL = 1e-5


def test_facts_table_matches_the_paper_backbones():
    b16, l14, in21k = BACKBONES["clip_vitb16"], BACKBONES["clip_vitl14"], BACKBONES["in21k_vitb16"]
    assert (b16.width, b16.depth, b16.heads, b16.patch_size, b16.num_tokens) == (768, 12, 12, 16, 197)
    assert (l14.width, l14.depth, l14.heads, l14.patch_size, l14.num_tokens) == (1024, 24, 16, 14, 257)
    assert BACKBONES["clip_vitl14_336"].num_tokens == 577 and BACKBONES["clip_vitb32"].num_tokens == 50
    assert (b16.act, b16.ln_eps, b16.ln_fp32, b16.pre_norm, b16.patch_bias) == ("quick_gelu", 1e-5, True, True, False)
    assert (in21k.act, in21k.ln_eps, in21k.pre_norm, in21k.patch_bias) == ("gelu", 1e-6, False, True)
    assert b16.mean == (122.77, 116.75, 104.09) and in21k.std == (58.395, 57.12, 57.375)


def test_clip_vitb16_parameter_count_equals_openai_image_tower_without_proj():
    with torch.device("meta"):
        vit = build_vit("clip_vitb16")
    assert sum(p.numel() for p in vit.parameters()) == 85_799_424


def test_open_clip_parity(images):
    peer = open_clip_model()
    vit = build_vit("tiny_clip").eval()
    sd = peer.state_dict()
    vit.load_state_dict(openai_to_vit(sd))
    with torch.no_grad():
        ours = vit(images) @ sd["visual.proj"]
        theirs = peer.encode_image(images)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_hf_clip_vision_parity(images):
    peer = hf_clip_vision()
    vit = build_vit("tiny_clip").eval()
    vit.load_state_dict(hf_clip_to_vit(peer.state_dict()))
    with torch.no_grad():
        torch.testing.assert_close(vit(images), peer(pixel_values=images).pooler_output, atol=ATOL, rtol=0)


@pytest.mark.parametrize("clip_style", [False, True])
def test_timm_parity(images, clip_style):
    peer = timm_vit(clip_style=clip_style)
    vit = build_vit("tiny_clip" if clip_style else "tiny_in21k").eval()
    vit.load_state_dict(timm_to_vit(peer.state_dict()))
    with torch.no_grad():
        theirs = peer.forward_head(peer.forward_features(images), pre_logits=True)
        torch.testing.assert_close(vit(images), theirs, atol=ATOL, rtol=0)


def test_layernorm_runs_in_fp32_under_bf16(images):
    vit = build_vit("tiny_clip").eval()
    x = torch.randn(2, 5, WIDTH, dtype=torch.bfloat16) * 50 + 300  # large offset: bf16 LN would lose it
    norm = vit.blocks[0].norm1
    ref = torch.nn.functional.layer_norm(x.float(), (WIDTH,), norm.weight, norm.bias, 1e-5)
    out = norm(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=1e-2)


def test_math_attention_equals_sdpa():
    """Attention with explicit products (AIM's temporal pass): the same outputs and gradients as SDPA in fp32, and under
    bf16 autocast no further from the fp32 result than SDPA is."""
    torch.manual_seed(0)
    attn = build_vit("tiny_clip").blocks[0].attn
    x = torch.randn(6, 8, WIDTH)

    def run(math, bf16=False):
        xg = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = attn(xg, math=math)
        (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        grads = [xg.grad] + [p.grad.clone() for p in attn.parameters()]
        attn.zero_grad(set_to_none=True)
        return y.float(), grads

    (ref, ref_grads), (out, grads) = run(False), run(True)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-6, rtol=1e-5)
    sdpa_err = (run(False, bf16=True)[0] - ref).abs().max()
    math_err = (run(True, bf16=True)[0] - ref).abs().max()
    assert math_err <= 2 * sdpa_err + 1e-3


def test_attention_over_frames_equals_attention_on_regrouped_tokens():
    """``over_frames`` on the frame layout (B*T, N, D) is SDPA over the T frames of each token position, i.e.
    ``forward`` on ``(b t) n d -> (b n) t d`` regrouped tokens, regrouped back: outputs and gradients in fp32,
    compiled as it is meant to run, and within SDPA's own bf16 error under autocast."""
    torch.manual_seed(0)
    attn = build_vit("tiny_clip").blocks[0].attn
    frames, x = 4, torch.randn(2 * 4, 5, WIDTH)
    compiled = torch.compile(functools.partial(over_frames, attn), backend="aot_eager", dynamic=False)

    def run(fn, bf16=False):
        xg = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = fn(xg)
        (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        grads = [xg.grad] + [p.grad.clone() for p in attn.parameters()]
        attn.zero_grad(set_to_none=True)
        return y.float(), grads

    def regrouped(xg):
        y = attn(rearrange(xg, "(b t) n d -> (b n) t d", t=frames))
        return rearrange(y, "(b n) t d -> (b t) n d", n=x.shape[1])

    (ref, ref_grads), (out, grads) = run(regrouped), run(lambda xg: compiled(xg, frames))
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-6, rtol=1e-5)
    sdpa_err = (run(regrouped, bf16=True)[0] - ref).abs().max()
    frames_err = (run(lambda xg: compiled(xg, frames), bf16=True)[0] - ref).abs().max()
    assert frames_err <= 2 * sdpa_err + 1e-3


def test_wrong_input_is_refused():
    vit = build_vit("tiny_clip")
    with pytest.raises(ValueError, match=r"expected 32x32 frames"):
        vit(torch.randn(1, 3, 40, 40))
    with pytest.raises(ValueError, match=r"\(B\*T, 3, H, W\)"):
        vit(torch.randn(1, 1, SIZE, SIZE))


def test_pos_embed_resize_matches_timm():
    from timm.layers import resample_abs_pos_embed

    pos = torch.randn(1, 1 + 4 * 4, WIDTH)
    ours = resize_pos_embed(pos, 6)
    theirs = resample_abs_pos_embed(pos, new_size=(6, 6), num_prefix_tokens=1)
    assert ours.shape == (1, 37, WIDTH)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[:, 0], pos[:, 0])


def test_load_resizes_pos_embed_and_reports_it(tmp_path, images):
    peer = timm_vit()
    path = tmp_path / "vit.pth"
    torch.save(peer.state_dict(), path)
    vit = build_vit("tiny_in21k", image_size=48)
    report = load_backbone(vit, str(path))
    assert report.resized == {"pos_embed": [[1, 17, WIDTH], [1, 37, WIDTH]]}
    assert report.format == "timm" and report.num_tensors == len(vit.state_dict())
    assert vit(torch.randn(1, 3, 48, 48)).shape == (1, WIDTH)


def test_torchscript_archive_like_the_openai_release(tmp_path, images, monkeypatch):
    """OpenAI publishes ViT-B-16.pt as a TorchScript archive of the whole CLIP model in fp16; we read its tensors as
    data, without torch.jit.load (which would compile and run the archive's program): the same tensors it gives."""
    from vidapter.models.torchscript import read_torchscript_tensors

    path = tmp_path / "ViT-B-16.pt"
    peer = openai_release_archive(path, images)
    ours, jit = read_torchscript_tensors(path), torch.jit.load(str(path)).state_dict()
    assert list(ours) == list(jit)
    for k, v in jit.items():
        assert ours[k].dtype == v.dtype and torch.equal(ours[k], v), k
    monkeypatch.setattr(torch.jit, "load", None)  # loading below must not call it
    vit = build_vit("tiny_clip").eval()
    report = load_backbone(vit, str(path))
    assert report.format == "openai"
    peer.float()  # the fp16 weights, widened: what the file holds
    with torch.no_grad():
        torch.testing.assert_close(vit(images) @ peer.visual.proj, peer.encode_image(images), atol=ATOL, rtol=0)


@pytest.mark.parametrize("layout", ["safetensors", "bin_v4_prefix", "clipmodel"])
def test_hf_directory(tmp_path, images, layout):
    from safetensors.torch import save_file

    peer = hf_clip_vision()
    peer.save_pretrained(tmp_path)
    if layout != "safetensors":
        (tmp_path / "model.safetensors").unlink()
        sd = {f"vision_model.{k}": v for k, v in peer.state_dict().items()}
        if layout == "clipmodel":
            sd.update(
                {"text_model.embeddings.token_embedding.weight": torch.zeros(3, 2), "logit_scale": torch.ones(())}
            )
            sd["visual_projection.weight"] = torch.zeros(8, WIDTH)
            save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "model.safetensors")
        else:
            torch.save(sd, tmp_path / "pytorch_model.bin")
    vit = build_vit("tiny_clip").eval()
    assert load_backbone(vit, str(tmp_path)).format == "hf_clip"
    with torch.no_grad():
        torch.testing.assert_close(vit(images), peer(pixel_values=images).pooler_output, atol=ATOL, rtol=0)


def test_hf_config_that_disagrees_with_the_backbone_is_refused(tmp_path):
    hf_clip_vision().save_pretrained(tmp_path)
    with pytest.raises(WeightsError, match=r"config.json: hidden_act is 'quick_gelu'.*expects 'gelu'"):
        load_backbone(build_vit("tiny_in21k"), str(tmp_path))


@torch.no_grad()
def _timm_to_original_npz(model) -> dict[str, np.ndarray]:
    """Write a timm ViT in the layout of Google's original ViT .npz (inverse of timm's own loader)."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    heads, dh = model.blocks[0].attn.num_heads, WIDTH // model.blocks[0].attn.num_heads
    out = {
        "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": sd["patch_embed.proj.bias"],
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        "head/kernel": sd["head.weight"].T,
        "head/bias": sd["head.bias"],
    }
    for i in range(len(model.blocks)):
        b, p = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        mha = p + "MultiHeadDotProductAttention_1/"
        for j, name in enumerate(("query", "key", "value")):
            w = sd[b + "attn.qkv.weight"][j * WIDTH : (j + 1) * WIDTH]
            out[mha + name + "/kernel"] = w.T.reshape(WIDTH, heads, dh)
            out[mha + name + "/bias"] = sd[b + "attn.qkv.bias"][j * WIDTH : (j + 1) * WIDTH].reshape(heads, dh)
        out[mha + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, dh, WIDTH)
        out[mha + "out/bias"] = sd[b + "attn.proj.bias"]
        for ln, src in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            out[p + ln + "/scale"], out[p + ln + "/bias"] = sd[b + src + ".weight"], sd[b + src + ".bias"]
        for j in range(2):
            out[p + f"MlpBlock_3/Dense_{j}/kernel"] = sd[b + f"mlp.fc{j + 1}.weight"].T
            out[p + f"MlpBlock_3/Dense_{j}/bias"] = sd[b + f"mlp.fc{j + 1}.bias"]
    return out


def test_original_jax_npz(tmp_path, images):
    from timm.models.vision_transformer import _load_weights

    peer = timm_vit()
    path = tmp_path / "ViT-B_16.npz"
    np.savez(path, **_timm_to_original_npz(peer))
    # The file is in the layout timm itself reads: timm's loader reproduces the peer exactly.
    check = timm_vit(seed=5)
    _load_weights(check, str(path))
    with torch.no_grad():
        torch.testing.assert_close(check(images), peer(images), atol=ATOL, rtol=0)
    vit = build_vit("tiny_in21k").eval()
    assert load_backbone(vit, str(path)).format == "jax_npz"
    with torch.no_grad():
        torch.testing.assert_close(vit(images), peer.forward_head(peer.forward_features(images), pre_logits=True))


def test_timm_safetensors(tmp_path, images):
    from safetensors.torch import save_file

    peer = timm_vit()
    save_file(peer.state_dict(), tmp_path / "vit.safetensors")
    vit = build_vit("tiny_in21k").eval()
    load_backbone(vit, str(tmp_path / "vit.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(vit(images), peer.forward_head(peer.forward_features(images), pre_logits=True))


def test_patch_size_is_a_fact_not_a_guess():
    assert build_vit("tiny_clip").patch_embed.proj.kernel_size == (PATCH, PATCH)

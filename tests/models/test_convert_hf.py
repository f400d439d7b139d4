"""HF SigLIP / DINOv2 / DINOv3 layouts convert to the canonical names: a tiny random transformers model, converted and
loaded into the equivalent timm model, gives the same pooled feature (fp32, 1e-5). CASES is the table of families."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
import timm
import torch
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_
from torch import nn

from vidapter.models.convert import ConversionError
from vidapter.models.families.dinov2 import hf_dinov2_to_vit
from vidapter.models.layouts import detect_layout, image_layouts

CONVERTERS = image_layouts()  # every image layout's converter, by name

MLP, REG = 4 * WIDTH, 4
TOWER = dict(img_size=SIZE, patch_size=PATCH, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, mlp_ratio=4)


def hf_siglip(seed: int = 0) -> nn.Module:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    cfg = SiglipVisionConfig(
        hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
        patch_size=PATCH, image_size=SIZE,
    )  # fmt: skip
    return randomize_(SiglipVisionModel(cfg), seed).eval()


def hf_siglip_full(seed: int = 0) -> nn.Module:
    """A whole SiglipModel: the published files' layout (``vision_model.`` beside a text tower and logit scale/bias)."""
    from transformers import SiglipConfig, SiglipModel

    vision = dict(
        hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
        patch_size=PATCH, image_size=SIZE,
    )  # fmt: skip
    text = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=100,
        max_position_embeddings=16, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    return randomize_(SiglipModel(SiglipConfig(vision_config=vision, text_config=text)), seed).eval()


def hf_siglip2_naflex(seed: int = 0) -> nn.Module:
    from transformers import Siglip2VisionConfig, Siglip2VisionModel

    cfg = Siglip2VisionConfig(
        hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
        patch_size=PATCH, num_patches=(SIZE // PATCH) ** 2,
    )  # fmt: skip
    return randomize_(Siglip2VisionModel(cfg), seed).eval()


def hf_dinov2(seed: int = 0, **kw) -> nn.Module:
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config(
        hidden_size=WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS, mlp_ratio=4, patch_size=PATCH,
        image_size=SIZE, **kw,
    )  # fmt: skip
    return randomize_(Dinov2Model(cfg), seed).eval()


def hf_dinov2_reg(seed: int = 0) -> nn.Module:
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    cfg = Dinov2WithRegistersConfig(
        hidden_size=WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS, mlp_ratio=4, patch_size=PATCH,
        image_size=SIZE, num_register_tokens=REG,
    )  # fmt: skip
    return randomize_(Dinov2WithRegistersModel(cfg), seed).eval()


def hf_dinov3(seed: int = 0, **kw) -> nn.Module:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    cfg = DINOv3ViTConfig(
        hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
        patch_size=PATCH, image_size=SIZE, num_register_tokens=REG, **kw,
    )  # fmt: skip
    return randomize_(DINOv3ViTModel(cfg), seed).eval()


def pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """HF's pooled image feature: the MAP head's output (SigLIP), the CLS after the final norm (DINOv2/v3)."""
    return model(pixel_values=x).pooler_output


def pooled_vision_tower(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.vision_model(pixel_values=x).pooler_output


def pooled_naflex(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """NaFlex takes patches flattened by its own image processor, a patch mask and each image's grid."""
    from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

    patches = torch.stack([convert_image_to_patches(image, PATCH) for image in x])
    grid = SIZE // PATCH
    mask = torch.ones(patches.shape[:2], dtype=torch.int32)
    shapes = torch.tensor([[grid, grid]] * len(x))
    return model(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes).pooler_output


def canonical_to_eva(
    sd: dict[str, torch.Tensor], swiglu: bool = False, qkv_bias: bool = True
) -> dict[str, torch.Tensor]:
    """timm's Eva class (its DINOv3) spells a few canonical tensors differently: q_bias/v_bias (k bias is a zero buffer,
    so the canonical k part must be zero; without ``_qkvb`` there is no bias, so all of it must be zero),
    gamma_1/gamma_2, and a SwiGLU fc1 = [gate; up] as fc1_g / fc1_x."""
    out = {}
    for key, value in sd.items():
        if key.endswith(".attn.qkv.bias"):
            q, k, v = value.chunk(3)
            assert not (k if qkv_bias else value).any(), f"{key}: must be zero"
            if qkv_bias:
                out[key.replace("qkv.bias", "q_bias")], out[key.replace("qkv.bias", "v_bias")] = q, v
        elif m := re.fullmatch(r"(blocks\.\d+)\.ls([12])\.gamma", key):
            out[f"{m[1]}.gamma_{m[2]}"] = value
        elif swiglu and (m := re.fullmatch(r"(blocks\.\d+\.mlp)\.fc1\.(weight|bias)", key)):
            out[f"{m[1]}.fc1_g.{m[2]}"], out[f"{m[1]}.fc1_x.{m[2]}"] = value.chunk(2)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Case:
    """One HF family: the tiny HF model and its layout, the equivalent timm model (name and kwargs for
    ``timm.create_model``), HF's pooled feature, and canonical -> timm names (identity except for timm's Eva)."""

    id: str
    build_hf: Callable[[], nn.Module]
    fmt: str
    timm_name: str
    timm_kwargs: dict = field(default_factory=dict)
    feature: Callable[[nn.Module, torch.Tensor], torch.Tensor] = pooled
    to_timm: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = dict


SIGLIP_TIMM = dict(TOWER, act_layer="gelu_tanh")  # HF SigLIP uses GELU-tanh, timm's SigLIP B/16 exact GELU
DINOV3_TIMM = dict(TOWER, global_pool="token")  # upstream's CLS feature (timm defaults to avg)
CASES = [
    Case("siglip", hf_siglip, "hf_siglip", "vit_base_patch16_siglip_224", SIGLIP_TIMM),
    Case("siglip_full", hf_siglip_full, "hf_siglip", "vit_base_patch16_siglip_224", SIGLIP_TIMM, pooled_vision_tower),
    Case("siglip2_naflex", hf_siglip2_naflex, "hf_siglip", "vit_base_patch16_siglip_224", SIGLIP_TIMM, pooled_naflex),
    Case("dinov2", hf_dinov2, "hf_dinov2", "vit_small_patch14_dinov2", TOWER),
    # HF's SwiGLU hidden: int(256 * 2/3) rounded up to 8 = 176, i.e. a packed fc1 of 352 rows = 5.5 * WIDTH in timm
    Case("dinov2_swiglu", partial(hf_dinov2, use_swiglu_ffn=True), "hf_dinov2", "vit_giant_patch14_dinov2",
         dict(TOWER, mlp_ratio=352 / WIDTH)),
    Case("dinov2_reg4", hf_dinov2_reg, "hf_dinov2", "vit_small_patch14_reg4_dinov2", TOWER),
    Case("dinov3", hf_dinov3, "hf_dinov3", "vit_small_patch16_dinov3_qkvb", DINOV3_TIMM, to_timm=canonical_to_eva),
    Case("dinov3_gated", partial(hf_dinov3, use_gated_mlp=True, hidden_act="silu"), "hf_dinov3",
         "vit_huge_plus_patch16_dinov3_qkvb", DINOV3_TIMM, to_timm=partial(canonical_to_eva, swiglu=True)),
    # no q/v bias (the 7B's qkv_bias=False) -> an all-zero qkv.bias; timm's DINOv3 without _qkvb has none
    Case("dinov3_no_qkv_bias", partial(hf_dinov3, query_bias=False, value_bias=False), "hf_dinov3",
         "vit_small_patch16_dinov3", DINOV3_TIMM, to_timm=partial(canonical_to_eva, qkv_bias=False)),
]  # fmt: skip


def build_timm(case: Case) -> nn.Module:
    return timm.create_model(case.timm_name, pretrained=False, num_classes=0, **case.timm_kwargs).eval()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@torch.no_grad()
def test_converted_hf_weights_give_timms_features(case, images):
    hf = case.build_hf()
    sd = hf.state_dict()
    assert detect_layout(sd) == case.fmt
    model = build_timm(case)
    model.load_state_dict(case.to_timm(CONVERTERS[case.fmt](sd)))  # strict: every timm tensor comes from HF
    got = model.forward_head(model.forward_features(images), pre_logits=True)
    torch.testing.assert_close(got, case.feature(hf, images), atol=1e-5, rtol=0)


def dinov2_file_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 state_dict() names -> the names in the published DINOv2 files (what conversion_mapping.py
    renames at load): attention.attention.{query,key,value}, attention.output.dense, mlp.weights_in/weights_out."""
    full = {"q": "query", "k": "key", "v": "value"}
    out = {}
    for key, value in sd.items():
        if ".mlp.up_proj." in key:
            continue
        if ".mlp.gate_proj." in key:
            key, value = key.replace("gate_proj", "weights_in"), torch.cat([value, sd[key.replace("gate", "up")]])
        key = re.sub(r"attention\.([qkv])_proj", lambda m: f"attention.attention.{full[m[1]]}", key)
        key = key.replace("attention.o_proj", "attention.output.dense").replace("mlp.down_proj", "mlp.weights_out")
        out[key] = value
    return out


def dinov3_file_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 state_dict() names -> the published DINOv3 files' names (``layer.N`` without ``model.``)."""
    return {re.sub(r"^model\.layer\.", "layer.", k): v for k, v in sd.items()}


@pytest.mark.parametrize(
    "build, to_file",
    [
        (partial(hf_dinov2, use_swiglu_ffn=True), dinov2_file_names),
        (hf_dinov2_reg, dinov2_file_names),
        (partial(hf_dinov3, use_gated_mlp=True, hidden_act="silu"), dinov3_file_names),
    ],
    ids=["dinov2_swiglu", "dinov2_reg4", "dinov3_gated"],
)
def test_published_file_names_convert_like_the_state_dict(build, to_file, tmp_path):
    """The file names are real (transformers 5.24 loads them into the same model) and convert to the same tensors."""
    from safetensors.torch import save_file

    hf = build()
    sd = hf.state_dict()
    files = to_file(sd)
    assert set(files) != set(sd)
    save_file({k: v.contiguous() for k, v in files.items()}, tmp_path / "model.safetensors")
    hf.config.save_pretrained(tmp_path)
    loaded = type(hf).from_pretrained(tmp_path).state_dict()
    assert loaded.keys() == sd.keys() and all(torch.equal(loaded[k], v) for k, v in sd.items())
    assert detect_layout(files) == detect_layout(sd)
    fmt = detect_layout(sd)
    a, b = CONVERTERS[fmt](files), CONVERTERS[fmt](sd)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@torch.no_grad()
def test_dinov2_register_fold_is_exact(images):
    """cls_token := cls_token + pos[:, :1], pos := pos[:, 1:]: the tokens entering block 0 are bitwise HF's."""
    hf = hf_dinov2_reg()
    sd = hf.state_dict()
    out = hf_dinov2_to_vit(sd)
    pos = sd["embeddings.position_embeddings"]
    assert torch.equal(out["cls_token"], sd["embeddings.cls_token"] + pos[:, :1])
    assert torch.equal(out["pos_embed"], pos[:, 1:]) and out["pos_embed"].shape == (1, (SIZE // PATCH) ** 2, WIDTH)
    assert torch.equal(out["reg_token"], sd["embeddings.register_tokens"])
    model = build_timm(next(c for c in CASES if c.id == "dinov2_reg4"))
    model.load_state_dict(out)
    assert torch.equal(model._pos_embed(model.patch_embed(images)), hf.embeddings(images))
    # without registers the table keeps its CLS slot
    plain = hf_dinov2_to_vit(hf_dinov2().state_dict())
    assert plain["pos_embed"].shape == (1, 1 + (SIZE // PATCH) ** 2, WIDTH) and "reg_token" not in plain


@pytest.mark.parametrize(
    "fmt, build, extra",
    [
        ("hf_siglip", hf_siglip, "encoder.layers.0.self_attn.rotary.weight"),
        ("hf_siglip", hf_siglip_full, "vision_model.head.attention.q_norm.weight"),
        ("hf_dinov2", hf_dinov2_reg, "encoder.layer.1.attention.attention.rel_pos"),
        ("hf_dinov3", hf_dinov3, "model.layer.0.attention.q_norm.weight"),
    ],
)
def test_unknown_key_raises_naming_it(fmt, build, extra):
    sd = build().state_dict()
    sd[extra] = torch.zeros(WIDTH)
    with pytest.raises(ConversionError, match=re.escape(extra)):
        CONVERTERS[fmt](sd)


def test_dropped_keys_are_the_declared_ones():
    """Only the text tower, logit scale/bias, mask tokens and RoPE buffers are dropped; the k bias is zero."""
    full = hf_siglip_full().state_dict()
    assert {k for k in full if k.startswith("vision_model.")} != set()
    out = CONVERTERS["hf_siglip"](full)
    assert not any("text" in k or "logit" in k for k in out)
    tower = hf_siglip()
    assert out.keys() == CONVERTERS["hf_siglip"]({**tower.state_dict(), **dict(tower.named_buffers())}).keys()
    v3 = hf_dinov3()
    out = CONVERTERS["hf_dinov3"]({**v3.state_dict(), **dict(v3.named_buffers())})  # rope_embeddings.inv_freq too
    assert "pos_embed" not in out and not out["blocks.0.attn.qkv.bias"][WIDTH : 2 * WIDTH].any()

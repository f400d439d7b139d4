"""Every image family: exact loading through vidapter's loader, counts, metadata checks, and every method on each.

Peer models are timm's, built with random weights (tests/peers.py TIMM_FAMILIES); the layouts of the families' other
releases are checked converter by converter in test_convert_hf.py and test_convert_upstream.py (the converters
themselves: models/families/, models/convert_upstream.py).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from peers import SIZE, TIMM_FAMILIES, WIDTH, timm_family, timm_features
from safetensors.torch import save_file

from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.models.pretrained import WEIGHTS, WeightsError, load_backbone
from vidapter.models.vit import BACKBONES, VisionTransformer, build_vit

ROWS = sorted(TIMM_FAMILIES)


def _save(model, path):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


@pytest.mark.parametrize("row", ROWS)
def test_timm_file_loads_exactly_through_the_loader(row, images, tmp_path):
    peer = timm_family(row)
    vit = build_vit(row).eval()
    report = load_backbone(vit, _save(peer, tmp_path / "model.safetensors"))
    assert report.num_tensors == len(vit.state_dict())
    with torch.no_grad():
        ours = vit(images, feature=TIMM_FAMILIES[row][2])
        torch.testing.assert_close(ours, timm_features(peer, images), atol=1e-5, rtol=0)


# Vision-tower parameter counts of timm's definitions (num_classes=0, BACKBONES.md section 2); vidapter's rows add
# only the zero key bias of q/v-bias families (EVA02: one D per block; DINOv3, whose timm files have no qkv bias: 3D).
TIMM_COUNTS = {
    "laion2b_vitb16": ("vit_base_patch16_clip_224", 85_799_424, 0),
    "siglip_vitb16": ("vit_base_patch16_siglip_224", 92_884_224, 0),
    "siglip_so400m14_384": ("vit_so400m_patch14_siglip_384", None, 0),
    "dinov2_vits14": ("vit_small_patch14_dinov2", 22_056_192, 0),
    "dinov2_vitb14_reg": ("vit_base_patch14_reg4_dinov2", None, 0),
    "dinov2_vitg14": ("vit_giant_patch14_dinov2", 1_136_479_232, 0),
    "dinov3_vits16": ("vit_small_patch16_dinov3", 21_586_944, 3 * 384 * 12),
    "dinov3_vitl16": ("vit_large_patch16_dinov3", None, 3 * 1024 * 24),
    "pe_core_vitb16": ("vit_pe_core_base_patch16_224", 92_886_528, 0),
    "pe_core_vitl14_336": ("vit_pe_core_large_patch14_336", None, 0),
    "eva02_clip_vitb16": ("eva02_base_patch16_clip_224", 85_869_312, 768 * 12),
    "eva02_clip_vitl14_336": ("eva02_large_patch14_clip_336", None, 1024 * 24),
    "laion2b_vitbigg14": ("vit_gigantic_patch14_clip_224", None, 0),
}


@pytest.mark.parametrize("row", sorted(TIMM_COUNTS))
def test_full_size_rows_match_timm_structures(row):
    import timm

    name, count, zeros = TIMM_COUNTS[row]
    with torch.device("meta"):
        ours = build_vit(row).state_dict()
        theirs = timm.create_model(name, pretrained=False, num_classes=0).state_dict()
    n_ours, n_theirs = (sum(v.numel() for v in sd.values()) for sd in (ours, theirs))
    assert n_ours == n_theirs + zeros and (count is None or n_theirs == count)
    shared = set(ours) & set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in shared if k != "pos_embed")


def test_every_published_name_names_a_row():
    assert all(w.backbone in BACKBONES for w in WEIGHTS.values())
    families = {f.family for n, f in BACKBONES.items() if not n.startswith(("tiny_", "demo_"))}
    named = {BACKBONES[w.backbone].family for w in WEIGHTS.values()}
    assert families <= named


def _cfg(row: str, method: str, **kw) -> ModelConfig:
    adapters = ["spatial", "temporal", "joint"] if method in ("aim",) else []
    return ModelConfig(backbone=row, num_frames=4, num_classes=5, adapters=adapters, method=method, **kw)


@pytest.mark.parametrize("method", ["aim", "st_adapter", "zeroi2v", "lora"])
@pytest.mark.parametrize("row", ROWS)
def test_adapted_model_equals_the_image_model_at_initialisation(row, method, video):
    """Zero-initialised adapters (and a zero temporal embedding) leave every frame's feature as the frozen image
    model's; ST-Adapter reads the mean over T before the norm, so its frames are compared through that readout."""
    model = build_model(_cfg(row, method, drop_path_rate=0.0)).eval()
    vit = build_vit(row).eval()
    vit.load_state_dict({k[len("backbone."):]: v for k, v in model.state_dict().items()
                         if k.startswith("backbone.") and k[len("backbone."):] in vit.state_dict()})  # fmt: skip
    frames = video.permute(0, 2, 1, 3, 4).reshape(-1, 3, SIZE, SIZE)
    with torch.no_grad():
        image = vit(frames).view(video.shape[0], video.shape[2], WIDTH)
        if method == "st_adapter" and model.feature == "cls":  # its readout normalises after the mean over T
            ours = model._blocks(model._tokens(video), video.shape[2])[:, 0].view(*image.shape)
            ref = torch.stack([_cls_before_norm(vit, f) for f in video.permute(2, 0, 1, 3, 4)], dim=1)
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(model.forward_features(video), image, atol=1e-5, rtol=0)


def _cls_before_norm(vit, frames):
    x = vit.norm_pre(vit.embed(frames))
    for blk in vit.blocks:
        x = blk(x)
    return x[:, 0]


@pytest.mark.parametrize("row", ROWS)
def test_gradients_reach_exactly_the_trainable_set(row, video):
    model = build_model(_cfg(row, "aim", drop_path_rate=0.0)).train()
    with torch.no_grad():  # the second projections start at zero: move them so every adapter gets a gradient
        for name, p in model.named_parameters():
            if p.requires_grad and "adapter" in name and name.endswith("fc2.weight"):
                p.normal_(std=0.02)
    model.head.dropout.p = 0.0
    model(video).square().sum().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == trainable
    assert not any(n.startswith("backbone.") and "adapter" not in n and not n.startswith("backbone.norm.")
                   for n in trainable)  # fmt: skip


def _hub_dir(tmp_path, peer, filename: str, meta_name: str, meta: dict):
    tmp_path.mkdir(parents=True, exist_ok=True)
    _save(peer, tmp_path / filename)
    (tmp_path / meta_name).write_text(json.dumps(meta))
    return str(tmp_path)


def test_open_clip_config_that_says_gelu_refuses_a_quickgelu_row(tmp_path):
    """The LAION-2B CLIP is OpenAI's layout with exact GELU: named as an OpenAI (QuickGELU) row, its open_clip config
    gives it away; the right row loads it."""
    from peers import open_clip_model

    peer = open_clip_model().visual
    meta = {"model_cfg": {"vision_cfg": {"width": WIDTH, "layers": 2, "patch_size": 8}}}
    folder = _hub_dir(tmp_path, peer, "open_clip_model.safetensors", "open_clip_config.json", meta)
    with pytest.raises(WeightsError, match=r"open_clip_config.json: quick_gelu is False.*laion2b_\*/datacomp_\*"):
        load_backbone(build_vit("tiny_clip"), folder)
    assert load_backbone(build_vit("tiny_open_clip"), folder).format == "openai"
    meta["preprocess_cfg"] = {"mean": [0.5, 0.5, 0.5]}  # weights trained on other inputs than the row's
    folder = _hub_dir(tmp_path / "half", peer, "open_clip_model.safetensors", "open_clip_config.json", meta)
    with pytest.raises(WeightsError, match=r"preprocess_cfg.mean is \[0.5, 0.5, 0.5\]"):
        load_backbone(build_vit("tiny_open_clip"), folder)


def test_timm_and_hf_configs_that_contradict_the_row_are_refused(tmp_path):
    folder = _hub_dir(tmp_path / "timm", timm_family("tiny_siglip"), "model.safetensors", "config.json",
                      {"architecture": "vit_base_patch16_siglip_224", "num_classes": 0})  # fmt: skip
    with pytest.raises(WeightsError, match=r"architecture 'vit_base_patch16_siglip_224' is a siglip model"):
        load_backbone(build_vit("tiny_dinov2"), folder)
    folder = _hub_dir(tmp_path / "timm2", timm_family("tiny_open_clip"), "model.safetensors", "config.json",
                      {"architecture": "vit_base_patch16_clip_224"})  # fmt: skip
    with pytest.raises(WeightsError, match=r"architecture is 'vit_base_patch16_clip_224'.*QuickGELU"):
        load_backbone(build_vit("tiny_clip"), folder)
    from peers import hf_clip_vision

    peer = hf_clip_vision()
    peer.config.hidden_act = "gelu"
    peer.save_pretrained(tmp_path / "hf")
    with pytest.raises(WeightsError, match=r"hidden_act is 'gelu'.*expects 'quick_gelu'.*laion2b_"):
        load_backbone(build_vit("tiny_clip"), str(tmp_path / "hf"))


def test_a_file_named_with_the_wrong_row_says_which_row_it_fits(tmp_path):
    path = _save(timm_family("tiny_dinov2_reg"), tmp_path / "reg.safetensors")
    with pytest.raises(WeightsError, match=r"reg.safetensors: .*it looks like tiny_dinov2_reg$"):
        load_backbone(build_vit("tiny_dinov2"), path)


# Every published layout of test_convert_hf.py / test_convert_upstream.py (each there checked against its peer), now
# through vidapter's loader into vidapter's ViT: case id -> (tiny row, the peer's own deviations from the row's facts:
# its MLP width, the RoPE reference grid timm's definition keeps, and timm/open_clip's exact GELU for SigLIP).
HF_ROWS = {
    "siglip": ("tiny_siglip", {}),
    "siglip_full": ("tiny_siglip", {}),
    "dinov2": ("tiny_dinov2", {}),
    "dinov2_swiglu": ("tiny_dinov2_swiglu", {"mlp_hidden": 176}),
    "dinov2_reg4": ("tiny_dinov2_reg", {}),
    "dinov3": ("tiny_dinov3", {}),
    "dinov3_no_qkv_bias": ("tiny_dinov3", {}),
}
UPSTREAM_ROWS = {
    "timm-eva02-clip": ("tiny_eva02", {"rope_grid": 16}),
    "timm-pe-core-b": ("tiny_pe_core", {"rope_grid": 14}),
    "timm-dinov3": ("tiny_dinov3", {}),
    "timm-dinov3-qkvb": ("tiny_dinov3", {}),
    "timm-siglip": ("tiny_siglip", {"act": "gelu"}),
    "timm-clip": ("tiny_open_clip", {}),
    "timm-dinov2-reg4": ("tiny_dinov2_reg", {}),
    "timm-dinov2-g": ("tiny_dinov2_swiglu", {"mlp_hidden": 128}),
    "open_clip-EVA02-B-16": ("tiny_eva02", {"rope_grid": 16}),
    "open_clip-PE-Core-B-16": ("tiny_pe_core", {"rope_grid": 14}),
    "open_clip-ViT-B-16-SigLIP": ("tiny_siglip", {"act": "gelu"}),
    "dinov2": ("tiny_dinov2", {}),
    "dinov2-reg4": ("tiny_dinov2_reg", {}),
    "dinov2-g": ("tiny_dinov2_swiglu", {"mlp_hidden": 128}),
    "dinov2-chunked": ("tiny_dinov2_reg", {}),
    "dinov3": ("tiny_dinov3", {}),
    "pe-core-b-clip": ("tiny_pe_core", {"rope_grid": 14}),
    "eva02-clip": ("tiny_eva02", {"rope_grid": 16}),
}


def _layout_cases():
    import test_convert_hf as hf
    import test_convert_upstream as up

    cases = []
    for c in hf.CASES:
        if c.id in HF_ROWS:
            cases.append(pytest.param(lambda c=c: (m := c.build_hf(), m.state_dict()), c.feature, *HF_ROWS[c.id],
                                      id=f"hf-{c.id}"))  # fmt: skip
    for c in up.CASES:
        if c.id in UPSTREAM_ROWS:
            cases.append(pytest.param(c.make, c.features, *UPSTREAM_ROWS[c.id], id=c.id))
    return cases


@pytest.mark.parametrize("make, features, row, changes", _layout_cases())
def test_every_published_layout_loads_exactly_into_its_row(make, features, row, changes, images, tmp_path):
    peer, sd = make()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.detach().clone().contiguous() for k, v in sd.items()}, str(path))
    vit = VisionTransformer(dataclasses.replace(BACKBONES[row], **changes), name=row).eval()
    load_backbone(vit, str(path))
    feature = "pool" if vit.facts.attn_pool else "cls"
    with torch.no_grad():
        torch.testing.assert_close(vit(images, feature=feature), features(peer.eval(), images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("row", ["tiny_eva02", "tiny_dinov3", "tiny_pe_core", "tiny_siglip", "tiny_dinov2_swiglu"])
def test_every_family_compiles_without_graph_breaks(row, video):
    """RoPE tables, registers, LayerScale, SwiGLU and the pooling head keep AIM's model one graph for torch.compile."""
    model = build_model(_cfg(row, "aim")).train()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(video)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_timm_file_without_qkv_bias_loads_through_the_loader(images, tmp_path):
    """A timm ViT file whose attention has no bias (``qkv_bias=False``) takes the zero bias it stands for, through the
    same route as every timm file (``model.pretrained=PATH``)."""
    import timm
    from peers import TINY, randomize_

    peer = randomize_(timm.create_model("vit_base_patch16_224", pretrained=False, qkv_bias=False, **TINY)).eval()
    assert not any("qkv.bias" in k for k in peer.state_dict())
    vit = build_vit("tiny_in21k").eval()
    load_backbone(vit, _save(peer, tmp_path / "model.safetensors"))
    assert not vit.blocks[0].attn.qkv.bias.any()
    with torch.no_grad():
        torch.testing.assert_close(vit(images, feature="cls"), timm_features(peer, images), atol=1e-5, rtol=0)

"""ZeroI2V: linear adapters, identity at init, merging (per layer and end to end), released checkpoints."""

from __future__ import annotations

import pytest
import torch
from official import convert_official
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_

from vidapter.adapters.stdha import apply_stdha
from vidapter.adapters.zeroi2v import LinearAdapter, ZeroI2VBlock
from vidapter.classifier import build_model, from_pretrained, save_pretrained
from vidapter.cli import main
from vidapter.config import Config, ModelConfig
from vidapter.models.vit import Block, build_vit

T, K = 4, 7


def _model(num_tadapter=2, scale=0.5, shifts=(-1, 1)) -> torch.nn.Module:
    cfg = ModelConfig(backbone="tiny_clip", num_frames=T, num_classes=K, method="zeroi2v", adapters=[],
                      sections={"zeroi2v": {"num_tadapter": num_tadapter, "scale": scale}},
                      head_shifts=list(shifts))  # fmt: skip
    return build_model(cfg)


def test_identity_at_init_equals_the_image_block_with_stdha():
    vit = build_vit("tiny_clip")
    apply_stdha(vit, (-1, 1), layers=[0])
    plain = vit.blocks[0]
    blk = ZeroI2VBlock(plain, WIDTH, scale=0.5)
    x = torch.randn(2 * T, 17, WIDTH)
    with torch.no_grad():
        assert torch.equal(blk.eval()(x, T), plain(x, T))
    assert all(a.fc2.weight.abs().max() == 0 for a in (blk.t_adapter_in, blk.s_adapter, blk.mlp_adapter))
    assert blk.t_adapter_in.fc1.weight.std().item() == pytest.approx(0.02, rel=0.3)
    assert sum(p.numel() for p in LinearAdapter(768).parameters()) == 295_872  # one ViT-B/16 adapter


@pytest.mark.parametrize("scale", [0.5, 1.0])
@pytest.mark.parametrize("num_tadapter", [1, 2])
def test_merge_per_layer_in_float64(scale, num_tadapter):
    """Each folded layer equals adapter-then-layer (or layer-then-adapter) for every input, to 1e-10 in float64."""
    torch.manual_seed(0)
    blk = ZeroI2VBlock(Block(build_vit("tiny_clip").facts), WIDTH, scale=scale, num_tadapter=num_tadapter)
    randomize_(blk).double().eval()
    x = torch.randn(5, WIDTH, dtype=torch.float64)
    h = torch.randn(5, 4 * WIDTH, dtype=torch.float64)
    want = {"qkv": blk.attn.qkv(blk.t_adapter_in(x)), "proj": blk.s_adapter(blk.attn.proj(x)),
            "fc1": blk.mlp.fc1(blk.mlp_adapter(x))}  # fmt: skip
    if num_tadapter == 2:
        want["fc2"] = blk.mlp_adapter_out(blk.mlp.fc2(h))
    merged = blk.merged()
    got = {"qkv": merged.attn.qkv(x), "proj": merged.attn.proj(x), "fc1": merged.mlp.fc1(x), "fc2": merged.mlp.fc2(h)}
    for name, w in want.items():
        torch.testing.assert_close(got[name], w, atol=1e-10, rtol=0, msg=name)  # q, k and v rows alike


@pytest.mark.parametrize("scale, num_tadapter, shifts", [(0.5, 2, (-1, 1)), (1.0, 1, (-1, 1, -2, 2))])
def test_export_merge_end_to_end(tmp_path, video, capsys, scale, num_tadapter, shifts):
    """``vidapter export --merge``: a plain ViT + temporal embedding + head whose config keeps the time shifts, with
    the unmerged logits (fp32, 1e-5)."""
    model = randomize_(_model(num_tadapter, scale, shifts), seed=1).eval()
    cfg = Config(model=ModelConfig(backbone="tiny_clip", num_frames=T, num_classes=K, method="zeroi2v", adapters=[],
                                   sections={"zeroi2v": {"num_tadapter": num_tadapter, "scale": scale}},
                                   head_shifts=list(shifts)))  # fmt: skip
    save_pretrained(model, cfg, tmp_path / "m")
    assert main(["export", str(tmp_path / "m"), "--merge", "--model-dir", str(tmp_path / "merged")]) == 0
    assert "merged" in capsys.readouterr().out
    merged, mcfg, _ = from_pretrained(tmp_path / "merged")
    assert (mcfg.model.method, mcfg.model.head_shifts, mcfg.model.temporal_embed) == ("aim", list(shifts), True)
    plain = build_model(ModelConfig(backbone="tiny_clip", num_frames=T, num_classes=K, adapters=[],
                                    temporal_embed=True))  # fmt: skip
    assert set(merged.state_dict()) == set(plain.state_dict())  # plain ViT keys + temporal_embed + head
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(video), model(video), atol=1e-5, rtol=0)


def _official(num_tadapter, scale, **shift):
    from reference.zeroi2v import I3DHead, Recognizer3D, ViT_Zero_CLIP

    backbone = ViT_Zero_CLIP(SIZE, T, PATCH, WIDTH, DEPTH, HEADS, num_tadapter=num_tadapter, adapter_scale=scale,
                             **shift)  # fmt: skip
    return randomize_(Recognizer3D(backbone, I3DHead(K, WIDTH)), seed=6).eval()


@pytest.mark.parametrize(
    "preset, num_tadapter, scale, shift",
    [("zeroi2v_k400_vitb16_8f", 2, 0.5, {"shift_div": HEADS}),  # h0 -> t-1, h1 -> t+1
     ("zeroi2v_ssv2_vitb16_16f", 2, 1.0, {"shift_div": HEADS, "long_shift_div": HEADS, "long_shift_right": True})],
)  # fmt: skip
def test_convert_released_checkpoint_gives_official_logits(tmp_path, video, preset, num_tadapter, scale, shift):
    from reference.zeroi2v import official_checkpoint

    ref = _official(num_tadapter, scale, **shift)
    model, cfg = convert_official(tmp_path, "zeroi2v-official", official_checkpoint(ref), preset)
    assert (cfg.model.method, cfg.model.num_frames, cfg.model.zeroi2v.scale) == ("zeroi2v", T, scale)
    with torch.no_grad():
        torch.testing.assert_close(model(video), ref(video), atol=1e-5, rtol=0)


def test_convert_official_merged_checkpoint(tmp_path, video):
    """The official reparameterisation script's output (adapters folded, no adapter keys) converts to a plain model
    with the preset's time shifts, equal to the official eval model and to the unmerged official model."""
    from reference.zeroi2v import official_checkpoint, reparameterize, to_eval_model

    ref = _official(2, 0.5, shift_div=HEADS)
    evaluated = to_eval_model(ref)
    ckpt = official_checkpoint(evaluated)
    assert ckpt["state_dict"].keys() == reparameterize(ref.state_dict(), 0.5, 2, DEPTH).keys()
    model, cfg = convert_official(tmp_path, "zeroi2v-official", ckpt, "zeroi2v_k400_vitb16_8f")
    assert (cfg.model.method, cfg.model.adapters, cfg.model.head_shifts) == ("aim", [], [-1, 1])
    with torch.no_grad():
        torch.testing.assert_close(model(video), evaluated(video), atol=1e-5, rtol=0)
        torch.testing.assert_close(model(video), ref(video), atol=1e-5, rtol=0)

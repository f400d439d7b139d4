"""AIM's block, network and switches, checked by numbers (docs/model.md)."""

from __future__ import annotations

import copy

import pytest
import torch
from einops import rearrange
from peers import DEPTH, SIZE, WIDTH, hf_clip_vision, open_clip_model, randomize_, timm_vit

from vidapter.adapters.aim import AIMBlock, DropPath, resolve_layers
from vidapter.adapters.peft import peft_parameter_names
from vidapter.classifier import ABLATION_ROWS, build_model
from vidapter.config import ModelConfig
from vidapter.models.vit import build_vit


def _save_peer(kind: str, tmp_path) -> tuple[str, str]:
    """Save a tiny random peer model in its own format; return (path, backbone row)."""
    if kind == "open_clip":
        path = tmp_path / "open_clip.pt"
        torch.save({"state_dict": {f"module.{k}": v for k, v in open_clip_model().state_dict().items()}}, path)
        return str(path), "tiny_clip"
    if kind == "hf":
        hf_clip_vision().save_pretrained(tmp_path / "hf")
        return str(tmp_path / "hf"), "tiny_clip"
    path = tmp_path / "timm.pth"
    torch.save(timm_vit().state_dict(), path)
    return str(path), "tiny_in21k"


def _cfg(**kw) -> ModelConfig:
    base = dict(backbone="tiny_clip", num_frames=4, num_classes=5)
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize("kind", ["open_clip", "hf", "timm"])
@pytest.mark.parametrize("num_tadapter", [1, 2])
def test_identity_at_init(tmp_path, video, kind, num_tadapter):
    """Fresh adapters: the video model's per-frame CLS features equal the image model run frame by frame."""
    path, row = _save_peer(kind, tmp_path)
    model = build_model(_cfg(backbone=row, pretrained=path, sections={"aim": {"num_tadapter": num_tadapter}})).eval()
    assert model.load_report is not None and model.load_report.path == path
    image = build_vit(row).eval()
    image.load_state_dict({k: v for k, v in model.backbone.state_dict().items() if "adapter" not in k})
    with torch.no_grad():
        ours = model.forward_features(video)
        frames = image(rearrange(video, "b c t h w -> (b t) c h w"))
    torch.testing.assert_close(ours, rearrange(frames, "(b t) d -> b t d", b=video.shape[0]), atol=1e-5, rtol=0)


def test_second_projections_start_at_zero_and_first_are_trunc_normal():
    torch.manual_seed(0)
    model = build_model(
        _cfg(backbone="clip_vitb16", num_frames=2, num_classes=3, sections={"aim": {"num_tadapter": 2}})
    )
    for blk in model.backbone.blocks:
        for name in blk.adapter_names():
            a = getattr(blk, name)
            assert not a.fc2.weight.any() and not a.fc2.bias.any()
            assert not a.fc1.bias.any()
            assert abs(a.fc1.weight.std().item() - 0.02) < 0.002  # trunc_normal(std=.02), default bounds ±2
    assert not model.temporal_embed.any()
    assert abs(model.head.fc.weight.std().item() - 0.01) < 0.001 and not model.head.fc.bias.any()


def _randomized(cfg: ModelConfig, seed: int = 0):
    return randomize_(build_model(cfg), seed).eval()


def test_block_equations_with_random_adapters():
    """One AIMBlock against the spec's five lines written out with the block's own modules."""
    torch.manual_seed(0)
    vit = randomize_(build_vit("tiny_clip"))
    blk = AIMBlock(vit.blocks[0], WIDTH, scale=0.5, num_tadapter=2)
    randomize_(blk, 3).eval()
    b, t, n = 2, 4, 17
    x = torch.randn(b * t, n, WIDTH)
    xt = rearrange(x, "(b t) n d -> (b n) t d", t=t)
    xt = blk.t_adapter(blk.attn(blk.t_adapter_in(blk.norm1(xt)), math=False))  # CPU: SDPA
    y = x + rearrange(xt, "(b n) t d -> (b t) n d", n=n)
    y = y + blk.s_adapter(blk.attn(blk.norm1(y)))
    xn = blk.norm2(y)
    y = y + blk.mlp(xn) + 0.5 * blk.mlp_adapter(xn)
    with torch.no_grad():
        torch.testing.assert_close(blk(x, t), y.detach(), atol=1e-6, rtol=0)
    # the skip flags of the spec: S and T_in add x, T and MLP adapters do not
    assert (blk.s_adapter.skip, blk.t_adapter_in.skip, blk.t_adapter.skip, blk.mlp_adapter.skip) == (1, 1, 0, 0)


def test_drop_path_only_on_temporal_branch_and_mlp_adapter():
    """With drop-path 1 in training, the block is exactly the spatial-adapted image block (no T, no MLP adapter)."""
    vit = randomize_(build_vit("tiny_clip"))
    blk = randomize_(AIMBlock(vit.blocks[0], WIDTH, drop_path=1.0), 4).train()
    x = torch.randn(8, 17, WIDTH)
    y = x + blk.s_adapter(blk.attn(blk.norm1(x)))
    y = y + blk.mlp(blk.norm2(y))
    with torch.no_grad():
        torch.testing.assert_close(blk(x, 4), y.detach(), atol=1e-6, rtol=0)


def test_drop_path_schedule_is_linear_over_depth():
    model = build_model(_cfg(backbone="clip_vitb16", num_frames=2, drop_path_rate=0.2))
    rates = [blk.drop_path.p for blk in model.backbone.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.2, 12))


def test_temporal_adapter_sees_frame_order_and_space_only_does_not(video):
    reversed_video = video.flip(2)
    aim = _randomized(_cfg())
    space = _randomized(_cfg(adapters=[]))
    with torch.no_grad():
        assert (aim(video) - aim(reversed_video)).abs().max() > 1e-3
        torch.testing.assert_close(space(video), space(reversed_video), atol=1e-5, rtol=0)
        # Spatial adapters alone pool frames too; only the reference's temporal embedding can tell order apart.
        spatial = _randomized(_cfg(adapters=["spatial"], temporal_embed=False))
        torch.testing.assert_close(spatial(video), spatial(reversed_video), atol=1e-5, rtol=0)
        with_embed = _randomized(_cfg(adapters=["spatial"]))
        assert (with_embed(video) - with_embed(reversed_video)).abs().max() > 1e-4


@pytest.mark.parametrize("row", list(ABLATION_ROWS))
def test_ablation_rows_build_what_they_say(row):
    kinds, finetune = ABLATION_ROWS[row]
    model = build_model(_cfg(adapters=kinds, finetune=finetune))
    blocks = model.backbone.blocks
    expected = {"spatial": ["s_adapter"], "temporal": ["t_adapter"], "joint": ["mlp_adapter"]}
    want = [n for k in ("temporal", "spatial", "joint") if k in kinds for n in expected[k]]
    if kinds:
        assert all(sorted(b.adapter_names()) == sorted(want) for b in blocks)
    else:
        assert not any(isinstance(b, AIMBlock) for b in blocks)
    assert (model.temporal_embed is not None) == bool(kinds)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if finetune == "full":
        assert trainable == {n for n, _ in model.named_parameters()}
    else:
        assert trainable == set(peft_parameter_names(model))


@pytest.mark.parametrize(
    "layers, idx",
    [("all", list(range(12))), ("bottom:6", list(range(6))), ("top:6", list(range(6, 12))),
     ("every_other", [0, 2, 4, 6, 8, 10]), ("0,5,11", [0, 5, 11])],
)  # fmt: skip
def test_adapter_layers(layers, idx):
    assert resolve_layers(layers, 12) == idx
    with torch.device("meta"):
        model = build_model(_cfg(backbone="clip_vitb16", adapter_layers=layers))
    assert [i for i, b in enumerate(model.backbone.blocks) if isinstance(b, AIMBlock)] == idx


@pytest.mark.parametrize("bad", ["top:0", "bottom:13", "some", "1,99"])
def test_bad_adapter_layers_are_refused(bad):
    with pytest.raises(ValueError, match="adapter layers"):
        resolve_layers(bad, 12)


@pytest.mark.parametrize("ratio, hidden", [(0.0625, 48), (0.125, 96), (0.25, 192), (0.5, 384)])
def test_ratio_sets_bottleneck(ratio, hidden):
    with torch.device("meta"):
        model = build_model(_cfg(backbone="clip_vitb16", sections={"aim": {"ratio": ratio}}))
    assert model.backbone.blocks[0].s_adapter.fc1.out_features == hidden


def test_gradients_reach_only_the_trainable_set(video):
    model = build_model(_cfg(sections={"aim": {"num_tadapter": 2}}, dropout=0.0))
    for blk in model.backbone.blocks:  # non-zero second projections, so every adapter weight gets a gradient
        for name in blk.adapter_names():
            torch.nn.init.normal_(getattr(blk, name).fc2.weight, std=0.02)
    model.train()
    model(video).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


@pytest.mark.parametrize("frames", [1, 8, 16, 32])
def test_any_number_of_frames(frames):
    model = _randomized(_cfg(num_frames=frames))
    video = torch.randn(1, 3, frames, SIZE, SIZE)
    with torch.no_grad():
        assert model(video).shape == (1, 5)
        assert model.forward_features(video).shape == (1, frames, WIDTH)


def test_batch_items_do_not_mix(video):
    """The (b t) <-> (b n) regrouping keeps videos apart: each item's logits equal its own single-item run."""
    model = _randomized(_cfg())
    with torch.no_grad():
        both = model(video)
        torch.testing.assert_close(both[1:], model(video[1:]), atol=1e-5, rtol=0)


def test_wrong_video_is_refused():
    model = build_model(_cfg())
    with pytest.raises(ValueError, match=r"built for T=4 frames, got 8"):
        model(torch.randn(1, 3, 8, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(1, 1, 4, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"expected 32x32 frames"):
        model(torch.randn(1, 3, 4, 48, 48))


def test_set_num_frames_interpolates_temporal_embedding():
    model = build_model(_cfg())
    with torch.no_grad():
        model.temporal_embed.copy_(torch.arange(4.0).view(1, 4, 1).expand(1, 4, WIDTH))
    model.set_num_frames(8)
    assert model.temporal_embed.shape == (1, 8, WIDTH) and model.temporal_embed.requires_grad
    torch.testing.assert_close(model.temporal_embed[0, :, 0], torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]))
    assert model(torch.randn(1, 3, 8, SIZE, SIZE)).shape == (1, 5)


def test_grad_checkpointing_gives_the_same_gradients(video):
    torch.manual_seed(0)
    plain = _randomized(_cfg(dropout=0.0, drop_path_rate=0.0)).train()
    ckpt = copy.deepcopy(plain)
    ckpt.grad_checkpointing = True
    for m in (plain, ckpt):
        m(video).square().mean().backward()
    for (n, p), (_, q) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        if p.requires_grad:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=n)


def test_bf16_autocast_forward_is_close_to_fp32(video):
    model = _randomized(_cfg())
    with torch.no_grad():
        ref = model(video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(video)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max() + 0.05


def test_depth_of_tiny_models():
    assert len(build_vit("tiny_clip").blocks) == DEPTH


def test_aim_block_compiles_without_graph_breaks():
    """torch.compile can fuse the adapter bottlenecks and residual adds only if the block is one graph."""
    import torch._dynamo

    vit = build_vit("tiny_clip")
    blk = AIMBlock(vit.blocks[0], WIDTH, num_tadapter=2, drop_path=0.1).train()
    explanation = torch._dynamo.explain(blk)(torch.randn(8, 17, WIDTH), 4)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


@pytest.mark.parametrize("num_tadapter", [1, 2])
def test_compiled_block_with_frame_layout_temporal_pass_equals_eager(num_tadapter):
    """``temporal_frames``: compiled, the temporal pass runs in the frame layout (no regrouping); the block's outputs
    and every gradient equal the eager block's (SDPA over regrouped tokens), drop-path included, in one graph."""
    import torch._dynamo

    torch.manual_seed(0)
    vit = build_vit("tiny_clip")
    eager = AIMBlock(vit.blocks[0], WIDTH, num_tadapter=num_tadapter, drop_path=0.3).train()
    for name, p in eager.named_parameters():  # non-zero adapters and peaked attention, so every branch counts
        if "adapter" in name:
            torch.nn.init.normal_(p, std=0.1)
    torch.nn.init.normal_(eager.attn.qkv.weight, std=0.3)
    fused = copy.deepcopy(eager)
    fused.temporal_math, fused.temporal_frames = True, True
    x = torch.randn(2 * 4, 17, WIDTH)

    def run(block, call):
        xg = x.clone().requires_grad_(True)
        torch.manual_seed(1)  # the same drop-path draws
        y = call(xg, 4)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        return y, [xg.grad] + [p.grad for p in block.parameters()]

    ref, ref_grads = run(eager, eager)
    torch._dynamo.reset()
    out, grads = run(fused, torch.compile(fused, backend="aot_eager", dynamic=False))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):  # weight gradients sum over all tokens, in another order
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4)
    explanation = torch._dynamo.explain(fused)(x, 4)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_temporal_attention_setting_reaches_every_block():
    """``model.temporal_attention`` sets each AIM block's way; an unknown value is refused, naming the field."""
    expected = {"auto": (None, False), "sdpa": (False, False), "products": (True, False), "frames": (True, True)}
    for mode, flags in expected.items():
        model = build_model(_cfg(temporal_attention=mode))
        assert {(b.temporal_math, b.temporal_frames) for b in model.backbone.blocks} == {flags}
    with pytest.raises(ValueError, match=r"model\.temporal_attention must be one of auto, sdpa, products, frames"):
        build_model(_cfg(temporal_attention="flash"))


def test_frames_temporal_pass_compiles_without_batched_gemms():
    """Compiled by inductor, ``frames`` leaves no batched GEMM in the block's forward or backward (``products`` has
    them), and the compiled step gives the eager block's output and input gradient."""
    from torch._inductor.utils import run_and_get_code

    torch.manual_seed(0)
    blk = AIMBlock(build_vit("tiny_clip").blocks[0], WIDTH).train()
    torch.nn.init.normal_(blk.t_adapter.fc2.weight, std=0.1)
    x = torch.randn(2 * 4, 17, WIDTH)

    def step(call):
        xg = x.clone().requires_grad_(True)
        y = call(xg, 4)
        return y, torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), xg)[0]

    codes, results = {}, {}
    for mode in ("products", "frames"):
        torch._dynamo.reset()
        blk.temporal_math, blk.temporal_frames = True, mode == "frames"
        results[mode], code = run_and_get_code(step, torch.compile(blk, dynamic=False))
        codes[mode] = "\n".join(code)
    assert "extern_kernels.bmm" in codes["products"] and "extern_kernels.bmm" not in codes["frames"]
    blk.temporal_frames = False
    ref, ref_grad = step(blk)
    torch.testing.assert_close(results["frames"][0], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results["frames"][1], ref_grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_drop_path_is_timms_bit_for_bit(p):
    """The reference uses timm's DropPath: the same draws and the same arithmetic (mask / keep, then one multiply)."""
    from timm.layers import drop_path

    x = torch.randn(6, 5, WIDTH)
    torch.manual_seed(3)
    ours = DropPath(p).train()(x)
    torch.manual_seed(3)
    assert torch.equal(ours, drop_path(x, p, training=True))
    assert torch.equal(DropPath(p).eval()(x), x)

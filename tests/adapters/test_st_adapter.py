"""ST-Adapter: the official code's adapter equation, placement, readout, gradients, counts and released checkpoints."""

from __future__ import annotations

import pytest
import torch
from official import convert_official
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_

from vidapter.adapters.st_adapter import STAdapter
from vidapter.classifier import build_model
from vidapter.config import ModelConfig

T, K, CA = 4, 7, 16


def _model(positions=("mlp",), **kw) -> torch.nn.Module:
    cfg = ModelConfig(backbone="tiny_clip", num_frames=T, num_classes=K, method="st_adapter", adapters=[],
                      sections={"st_adapter": {"width": CA, "positions": list(positions)}}, **kw)  # fmt: skip
    return build_model(cfg)


def test_adapter_is_the_three_tap_equation_on_patches_only():
    torch.manual_seed(0)
    a = randomize_(STAdapter(WIDTH, CA)).eval()
    x = torch.randn(2 * T, 1 + 4, WIDTH)  # a 2x2 grid
    y = a(x, T)
    assert torch.equal(y[:, 0], x[:, 0])  # the class token bypasses the adapter
    h = (x[:, 1:] @ a.fc1.weight.T + a.fc1.bias).view(2, T, 4, CA)  # (B, T, P, Ca)
    w, b = a.conv.weight.view(CA, 3), a.conv.bias
    pad = torch.nn.functional.pad(h, (0, 0, 0, 0, 1, 1))  # zeros outside the clip, after fc1 (no b1 there)
    mixed = pad[:, :-2] * w[:, 0] + pad[:, 1:-1] * w[:, 1] + pad[:, 2:] * w[:, 2] + b  # tap 0 <-> t - 1
    want = x[:, 1:] + (mixed @ a.fc2.weight.T + a.fc2.bias).view(2 * T, 4, WIDTH)  # no activation
    torch.testing.assert_close(y[:, 1:], want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", [("mlp",), ("attn", "mlp")])
def test_identity_at_init_and_mean_then_frozen_norm_readout(video, positions):
    model = _model(positions).eval()
    vit = model.backbone
    with torch.no_grad():
        x = vit.norm_pre(vit.embed(video.transpose(1, 2).flatten(0, 1)))
        for blk in vit.blocks:
            x = x + blk.attn(blk.norm1(x))
            x = x + blk.mlp(blk.norm2(x))
        feats = vit.norm(x[:, 0].view(2, T, -1).mean(1))  # mean over T first, then the frozen final norm
        assert torch.equal(model(video), model.head.fc(feats))
    assert model.temporal_embed is None and not any(p.requires_grad for p in vit.norm.parameters())
    assert model.head.fc.weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_first_step_gradients_as_the_official_code():
    """At init only conv.{weight,bias}, fc2.bias and the head receive gradient; the last block's pre-MLP adapter only
    edits patch tokens the head never reads, so it gets exactly 0 at any weights."""
    model = _model(("attn", "mlp"))
    model(torch.randn(2, 3, T, SIZE, SIZE)).sum().backward()
    nonzero = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    last = f"backbone.blocks.{DEPTH - 1}.adapter_pre_mlp."
    want = {
        f"backbone.blocks.{i}.adapter_pre_{w}.{p}"
        for i in range(DEPTH)
        for w in ("attn", "mlp")
        for p in ("conv.weight", "conv.bias", "fc2.bias")
        if not f"backbone.blocks.{i}.adapter_pre_{w}.".startswith(last)
    }
    assert nonzero == want | {"head.fc.weight", "head.fc.bias"}
    randomize_(model)
    model.zero_grad()
    model(torch.randn(2, 3, T, SIZE, SIZE)).sum().backward()
    assert all(p.grad.abs().sum() == 0 for n, p in model.named_parameters() if n.startswith(last))


@pytest.mark.parametrize("positions, preset", [(("mlp",), "st_adapter_k400_vitb16_8f"),
                                               (("attn", "mlp"), "st_adapter_ssv2_vitb16_8f")])  # fmt: skip
def test_convert_released_checkpoint_gives_official_logits(tmp_path, video, positions, preset):
    from reference.st_adapter import STAdapterViT, clip_visual_state_dict, official_checkpoint

    ref = STAdapterViT(SIZE, PATCH, WIDTH, DEPTH, HEADS, T, K, CA, DEPTH, "attn" in positions, "mlp" in positions)
    randomize_(ref, seed=3).eval()
    ckpt = official_checkpoint(ref)
    assert all(".conv.weight" not in k or v.shape == (CA, 1, 3, 1, 1) for k, v in ckpt["model"].items())
    model, cfg = convert_official(
        tmp_path, "st-adapter-official", ckpt, preset, f"--model.num_frames={T}", backbone=clip_visual_state_dict(ref)
    )
    assert (cfg.model.st_adapter.positions, cfg.model.st_adapter.width, cfg.model.num_classes) == (
        list(positions),
        CA,
        K,
    )
    with torch.no_grad():
        torch.testing.assert_close(model(video), ref(video), atol=1e-5, rtol=0)

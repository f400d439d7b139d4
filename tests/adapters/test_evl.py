"""EVL: taps, cross-frame term, composition, init, no backbone gradient, counts and released checkpoints."""

from __future__ import annotations

import pytest
import torch
from official import convert_official
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_

from vidapter.adapters.evl import CrossFrameTerm
from vidapter.classifier import build_model
from vidapter.cli import main
from vidapter.config import ModelConfig

T, K = 4, 7
GRID = SIZE // PATCH


def _model(layers: int = 2) -> torch.nn.Module:
    cfg = ModelConfig(
        backbone="tiny_clip",
        num_frames=T,
        num_classes=K,
        method="evl",
        adapters=[],
        sections={"evl": {"layers": layers}},
    )
    return build_model(cfg)


def test_cross_frame_term_formula():
    """Patch p of frame t: sum over patches k of frame t-1 of mean_heads softmax_k(q.k / sqrt(hd)) * w1[r(p, k)],
    plus the same with frame t+1 and w2; class-token rows 0; the offset table centred where p = k."""
    term = randomize_(CrossFrameTerm(GRID, WIDTH))
    n, hd = 1 + GRID**2, WIDTH // HEADS
    q, k = torch.randn(2, T, n, HEADS, hd), torch.randn(2, T, n, HEADS, hd)
    got = term(q, k)
    assert term.offsets[0, 0] == term.offsets[5, 5] == (2 * GRID - 1) * (GRID - 1) + GRID - 1
    want = torch.zeros_like(got)
    for t in range(T):
        for dt, w in ((-1, term.w1), (1, term.w2)):
            if 0 <= t + dt < T:
                a = torch.einsum("phd,khd->hpk", q[:, t, 1:][0], k[:, t + dt, 1:][0]) / hd**0.5
                a = a.softmax(-1).mean(0)  # (P, P)
                for p in range(GRID**2):
                    for kk in range(GRID**2):
                        r = (p // GRID - kk // GRID + GRID - 1) * (2 * GRID - 1) + (p % GRID - kk % GRID + GRID - 1)
                        want[0, t, 1 + p] += a[p, kk] * w[r]
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-4)
    assert got[:, :, 0].abs().max() == 0


def test_init_and_no_backbone_gradient(video):
    model = _model()
    dec = model.decoder
    zeros = [dec.cls_token, *dec.temporal_pos_embed, *(c.w1 for c in dec.cross_attention),
             *(c.w2 for c in dec.cross_attention)]  # fmt: skip
    assert all(p.abs().max() == 0 for p in zeros)
    assert all(c.weight.abs().max() > 0 for c in dec.temporal_conv)  # PyTorch's default, not zero
    assert dec.decoder_layers[0].mlp.fc1.bias.std() < 1e-5
    model.train()
    model(video).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n, _ in model.named_parameters() if n.startswith(("decoder.", "head."))}
    assert all(p.grad is not None for n, p in model.named_parameters() if n in trained)


@pytest.mark.parametrize("layers", [1, 2])
def test_convert_released_checkpoint_gives_official_logits(tmp_path, video, layers, capsys):
    from reference.evl import EVLTransformer, official_checkpoint, random_clip_visual_state_dict, vit_config

    clip = random_clip_visual_state_dict(WIDTH, DEPTH, HEADS, PATCH, SIZE, seed=4)
    ref = EVLTransformer(
        T,
        backbone_config=vit_config(WIDTH, DEPTH, HEADS, PATCH, SIZE),
        clip_state_dict=clip,
        decoder_num_layers=layers,
        decoder_qkv_dim=WIDTH,
        decoder_num_heads=HEADS,
        num_classes=K,
    )
    randomize_(ref, seed=5).eval()  # every decoder tensor, the zero-initialised ones too
    model, cfg = convert_official(tmp_path, "evl-official", official_checkpoint(ref), "evl_k400_vitb16_8f",
                                  backbone=clip)  # fmt: skip
    assert (cfg.model.num_frames, cfg.model.evl.layers, cfg.model.num_classes) == (T, layers, K)
    with torch.no_grad():
        torch.testing.assert_close(model(video), ref(video), atol=1e-5, rtol=0)
    if layers == 2:  # layers of one file at two T: the second does not fit, and the error names it
        bad = official_checkpoint(ref)
        bad["model"]["module.decoder.temporal_pos_embed.1"] = torch.zeros(T + 1, WIDTH)
        torch.save(bad, tmp_path / "bad.pth")
        args = [
            "convert",
            "evl-official",
            str(tmp_path / "bad.pth"),
            str(tmp_path / "bad"),
            "--preset",
            "evl_k400_vitb16_8f",
            "--model.backbone=tiny_clip",
            "--backbone",
            str(tmp_path / "clip_visual.pt"),
        ]
        assert main(args) == 1
        assert "decoder.temporal_pos_embed.1" in capsys.readouterr().err

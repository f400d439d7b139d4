"""Recompute modes (vit.set_recompute): the same gradients, bit for bit, and the tensors backward keeps are smaller."""

from __future__ import annotations

import copy

import pytest
import torch
from peers import DEPTH, SIZE, WIDTH, randomize_

from vidapter.config import ModelConfig
from vidapter.models.build import build_model
from vidapter.models.vit import set_recompute

MODES = ("none", "pointwise", "mlp")


def _model(backbone: str = "tiny_clip", finetune: str = "adapters"):
    cfg = ModelConfig(backbone=backbone, num_frames=4, num_classes=5, dropout=0.0, drop_path_rate=0.0,
                      finetune=finetune, num_tadapter=2)  # fmt: skip
    return randomize_(build_model(cfg)).train()


def _grads(model, video, amp: bool) -> dict[str, torch.Tensor]:
    video = video.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss = model(video).float().logsumexp(-1).mean()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return grads | {"<input>": video.grad}


@pytest.mark.parametrize("mode", ["pointwise", "mlp"])
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize(("backbone", "finetune"), [("tiny_clip", "adapters"), ("tiny_clip", "full"),
                                                    ("tiny_in21k", "adapters")])  # fmt: skip
def test_recompute_gives_bit_identical_gradients(video, mode, amp, backbone, finetune):
    plain = _model(backbone, finetune)
    set_recompute(plain, "none")
    lean = copy.deepcopy(plain)
    set_recompute(lean, mode)
    ref, out = _grads(plain, video, amp), _grads(lean, video, amp)
    assert ref.keys() == out.keys() and len(ref) > 3
    for name, g in ref.items():
        assert g is not None and torch.equal(g, out[name]), name


def _saved(model, video) -> list[torch.Tensor]:
    """One tensor per storage that autograd keeps for backward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, torch.Tensor] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            kept.setdefault(ptr, t)
        return t.detach()  # not t: a saved output would hold its own grad_fn, a cycle that leaks

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(video)
    return list(kept.values())


def test_recompute_keeps_less_for_backward(video):
    """bf16 autocast, the CUDA-like case: no fp32 copies of activations, one MLP-wide tensor per block, then none."""
    model = _model()
    tokens = video.shape[0] * video.shape[2] * ((SIZE // 8) ** 2 + 1)

    def census(mode):
        set_recompute(model, mode)
        saved = _saved(model, video)
        fp32_acts = [t for t in saved if t.dtype == torch.float32 and t.numel() == tokens * WIDTH]
        mlp_wide = [t for t in saved if t.shape[-1] == 4 * WIDTH and t.numel() == tokens * 4 * WIDTH]
        return len(fp32_acts), len(mlp_wide), sum(t.untyped_storage().nbytes() for t in saved)

    none, pointwise, mlp = (census(m) for m in MODES)
    # plain autograd: LayerNorm keeps an fp32 copy of its input (3 norms a block + the final one); QuickGELU keeps two
    assert none[:2] == (3 * DEPTH + 1, 2 * DEPTH)
    assert pointwise[:2] == (0, DEPTH)
    assert mlp[:2] == (0, 0)
    assert none[2] > pointwise[2] > mlp[2]


def test_recompute_mode_is_checked():
    with pytest.raises(ValueError, match="recompute mode 'all' unknown"):
        set_recompute(_model(), "all")
    with pytest.raises(ValueError, match="recompute mode"):
        build_model(ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=5, recompute="everything"))


def test_recompute_leaves_inference_alone(video):
    model = _model().eval()
    with torch.no_grad():
        ref = model(video)
        set_recompute(model, "mlp")
        assert torch.equal(model(video), ref)

"""Recompute modes (vit.set_recompute): the same gradients, bit for bit, and the tensors backward keeps are smaller."""

from __future__ import annotations

import copy

import pytest
import torch
from peers import DEPTH, SIZE, WIDTH, randomize_

from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.models.vit import set_recompute

MODES = ("none", "pointwise", "mlp")


def _model(backbone: str = "tiny_clip", finetune: str = "adapters"):
    cfg = ModelConfig(backbone=backbone, num_frames=4, num_classes=5, dropout=0.0, drop_path_rate=0.0,
                      finetune=finetune, sections={"aim": {"num_tadapter": 2}})  # fmt: skip
    return randomize_(build_model(cfg)).train()


def _grads(model, video, amp: bool | torch.dtype) -> dict[str, torch.Tensor]:
    video = video.clone().requires_grad_(True)
    dtype = amp if isinstance(amp, torch.dtype) else torch.bfloat16
    with torch.autocast("cpu", dtype=dtype, enabled=bool(amp)):
        loss = model(video).float().logsumexp(-1).mean()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return grads | {"<input>": video.grad}


@pytest.mark.parametrize("mode", ["pointwise", "mlp"])
@pytest.mark.parametrize("amp", [False, True, torch.float16])
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


@pytest.mark.parametrize("mode", ["pointwise", "mlp"])
def test_recompute_under_block_checkpointing_gives_bit_identical_gradients(video, mode):
    """Block checkpointing re-runs each block's forward in backward; the lean functions must survive that."""
    plain = _model()
    set_recompute(plain, "none")
    lean = copy.deepcopy(plain)
    set_recompute(lean, mode)
    lean.grad_checkpointing = True
    ref, out = _grads(plain, video, True), _grads(lean, video, True)
    assert all(torch.equal(g, out[name]) for name, g in ref.items())


def _saved(model, video) -> tuple[list[torch.Tensor], set[int]]:
    """One tensor per storage that autograd keeps for backward (parameters excluded), and the storages of the blocks'
    LayerNorm outputs (held alive, so no saved tensor can reuse their address)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, torch.Tensor] = {}
    normed: list[torch.Tensor] = []

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            kept.setdefault(ptr, t)
        return t.detach()  # not t: a saved output would hold its own grad_fn, a cycle that leaks

    hooks = [m.register_forward_hook(lambda m, i, out: normed.append(out))
             for n, m in model.named_modules() if n.endswith(("norm1", "norm2"))]  # fmt: skip
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(video)
    for h in hooks:
        h.remove()
    return list(kept.values()), {t.untyped_storage().data_ptr() for t in normed}


def test_recompute_keeps_less_for_backward(video):
    """bf16 autocast, the CUDA-like case. Per block, plain autograd keeps: an fp32 copy of each LayerNorm input, both
    QuickGELU tensors, the bf16 copy of every frozen matrix per use, each adapter's hidden layer before and after GELU,
    and the LayerNorm outputs that adapters read. pointwise keeps none of these but one MLP-wide tensor and each
    adapter's pre-activation; mlp keeps no MLP-wide tensor."""
    model = _model()  # 4 adapters a block: num_tadapter=2
    tokens = video.shape[0] * video.shape[2] * ((SIZE // 8) ** 2 + 1)
    frozen = {p.shape for p in model.backbone.blocks.parameters() if p.ndim == 2 and not p.requires_grad}
    frozen |= {s[::-1] for s in frozen}  # linear layers keep w.t()

    def census(mode):
        set_recompute(model, mode)
        saved, normed = _saved(model, video)
        return {
            "fp32 activations": sum(t.dtype == torch.float32 and t.numel() == tokens * WIDTH for t in saved),
            "mlp-wide": sum(t.shape[-1] == 4 * WIDTH and t.numel() == tokens * 4 * WIDTH for t in saved),
            "adapter hidden": sum(t.shape[-1] == WIDTH // 4 and t.numel() == tokens * WIDTH // 4 for t in saved),
            "frozen weight copies": sum(t.dtype == torch.bfloat16 and t.shape in frozen for t in saved),
            "norm outputs": sum(t.untyped_storage().data_ptr() in normed for t in saved),
            "bytes": sum(t.untyped_storage().nbytes() for t in saved),
        }

    none, pointwise, mlp = (census(m) for m in MODES)
    # 3 norms a block + the final one; QuickGELU 2; 4 adapters x 2; qkv and proj twice (temporal, spatial), fc1, fc2;
    # the temporal pass's norm1 (read by t_adapter_in) and norm2 (read by the MLP adapter)
    assert none == none | {"fp32 activations": 3 * DEPTH + 1, "mlp-wide": 2 * DEPTH, "adapter hidden": 8 * DEPTH,
                           "frozen weight copies": 6 * DEPTH, "norm outputs": 2 * DEPTH}  # fmt: skip
    lean = {"fp32 activations": 0, "adapter hidden": 4 * DEPTH, "frozen weight copies": 0, "norm outputs": 0}
    assert pointwise == pointwise | lean | {"mlp-wide": DEPTH}
    assert mlp == mlp | lean | {"mlp-wide": 0}
    assert none["bytes"] > pointwise["bytes"] > mlp["bytes"]


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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backbone", ["tiny_clip", "tiny_in21k"])
def test_frozen_matrices_stored_in_bf16_are_exact_under_bf16_autocast(video, mode, backbone):
    """train.frozen_dtype=auto stores frozen Linear/Conv weights in bf16 under amp=bf16: autocast casts exactly those
    to bf16 at every use, so the gradients (and the input's) are bit-identical, the digest of the restored model is the
    original's, and the bytes saved are half those matrices'."""
    from vidapter.adapters.peft import backbone_digest, restore_frozen_, store_frozen_matrices_

    plain = _model(backbone)
    set_recompute(plain, mode)
    stored = copy.deepcopy(plain)
    digest = backbone_digest(plain)
    before = sum(p.numel() * p.element_size() for p in stored.parameters())
    originals = store_frozen_matrices_(stored, torch.bfloat16)
    after = sum(p.numel() * p.element_size() for p in stored.parameters())
    assert originals and all(not n.startswith(("head.", "backbone.norm")) for n in originals)
    assert before - after == sum(t.numel() * 2 for t in originals.values())
    assert all(p.dtype == torch.float32 for p in stored.parameters() if p.requires_grad)
    ref, out = _grads(plain, video, True), _grads(stored, video, True)
    for name, g in ref.items():
        assert torch.equal(g, out[name]), name
    restore_frozen_(stored, originals)
    assert backbone_digest(stored) == digest
    assert all(
        torch.equal(a, b) for a, b in zip(plain.state_dict().values(), stored.state_dict().values(), strict=True)
    )

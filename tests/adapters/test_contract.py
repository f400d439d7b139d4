"""The contract every registered method keeps, checked on a tiny model from the registry alone: a method that
registers itself is tested here without a line of its own. What trains is exactly what its modules declare; the
adapted blocks compute the image model's function at initialisation where the method says so; forward and backward
are finite and reach only the trainable set; a saved model and an adapter export load back to the same logits; a
method that merges gives the same logits merged. Training, a kill and an exact resume, with gradient accumulation,
run for every method in tests/test_methods.py::test_engine_runs_every_method_and_resumes_exactly."""

from __future__ import annotations

import pytest
import torch
from peers import SIZE

from vidapter.adapters.peft import (
    adapter_parameter_names,
    declared_parameters,
    export_adapters,
    image_weight_names,
    load_adapters,
)
from vidapter.adapters.registry import METHODS, AdapterModule
from vidapter.classifier import VideoClassifier, build_model, load_model, merge_adapters, save_pretrained
from vidapter.config import Config, ModelConfig
from vidapter.models.vit import build_vit

T = 4


def _backbone(method: str) -> str:
    """The demo ViT (4 blocks: every default fits); a tiny CLIP for a method with its own text head."""
    return "tiny_clip" if METHODS[method].head is not None else "demo_vit"


def _cfg(method: str, **kw) -> ModelConfig:
    """The method on ``_backbone``'s ViT, beside AIM's adapters where it combines with them."""
    adapters = {} if METHODS[method].combines_aim else {"adapters": []}
    return ModelConfig(backbone=_backbone(method), num_frames=T, num_classes=5, method=method, **adapters, **kw)


def _model(method: str, trained: bool = True) -> VideoClassifier:
    """Built from seed 0 (the image weights are the same for every method); ``trained``: the trainable tensors
    moved off their initial values, so that every adapter changes the output."""
    torch.manual_seed(0)
    model = build_model(_cfg(method)).eval()
    if trained:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture
def clip() -> torch.Tensor:
    return torch.randn(2, 3, T, SIZE, SIZE, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("method", list(METHODS))
def test_the_trainable_set_is_what_the_modules_declare(method):
    model = _model(method, trained=False)
    declared = declared_parameters(model)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [n for n, _ in model.named_parameters()
                                                                           if n in declared]  # fmt: skip
    assert set(adapter_parameter_names(model)) == {n for n, owner in declared.items() if owner and owner != "head"}
    assert {n for n, owner in declared.items() if owner == "head"} == {f"head.{n}" for n in
                                                                       model.head.trainable_params()}  # fmt: skip
    assert set(adapter_parameter_names(model)) and all(n.startswith(("backbone.", "decoder.")) for n in
                                                       adapter_parameter_names(model))  # fmt: skip
    image = set(image_weight_names(model))
    backbone = {n for n, _ in model.named_parameters() if n.startswith("backbone.")}
    assert not image & set(declared) and image | set(declared) >= backbone
    assert image or backbone <= set(declared)  # frozen image weights, or a method that tunes the whole tower


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].identity_at_init])
def test_the_adapted_blocks_are_the_image_model_at_initialisation(method, clip):
    """Through the blocks (no temporal embedding, no readout): the adapted image model equals the plain one."""
    model = _model(method, trained=False)
    torch.manual_seed(0)
    plain = build_vit(_backbone(method)).eval()  # the same random image weights: built first from the same seed
    frames = clip.transpose(1, 2).flatten(0, 1)

    def blocks(vit):
        x = vit.norm_pre(vit.embed(frames))
        for blk in vit.blocks:
            x = blk(x, T)
        return x

    with torch.no_grad():
        want, got = blocks(plain), blocks(model.backbone)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", list(METHODS))
def test_forward_and_backward_are_finite_and_reach_only_the_trainable_set(method, clip):
    model = _model(method).train()
    logits = model(clip)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n in adapter_parameter_names(model))


@pytest.mark.parametrize("method", list(METHODS))
def test_a_saved_model_and_an_adapter_export_give_the_same_logits(method, clip, tmp_path):
    model, cfg = _model(method), Config("tiny", _cfg(method))
    with torch.no_grad():
        want = model(clip)
    save_pretrained(model, cfg, tmp_path / "model")
    loaded, loaded_cfg, _ = load_model(tmp_path / "model")
    assert loaded_cfg == cfg
    path = export_adapters(model, tmp_path / "adapters.safetensors", backbone=_backbone(method))
    fresh = _model(method, trained=False)  # the same image weights, the trainable tensors as initialised
    load_adapters(fresh, path)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(clip), want, atol=1e-6, rtol=0)
        torch.testing.assert_close(fresh(clip), want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].merge is not None])
def test_a_merged_model_gives_the_same_logits(method, clip, tmp_path):
    model, cfg = _model(method), Config("tiny", _cfg(method))
    with torch.no_grad():
        want = model(clip)
    merged_cfg, _ = merge_adapters(model, cfg)
    save_pretrained(model, merged_cfg, tmp_path / "merged")
    merged, _, _ = load_model(tmp_path / "merged")
    assert not adapter_parameter_names(merged) or merged_cfg.model.adapters  # only AIM's adapters may remain
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(clip), want, atol=1e-4, rtol=1e-4)


def test_a_module_must_declare_parameters_it_has():
    class Wrong(AdapterModule, torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2))

        def trainable_params(self):
            return ["v"]

    model = _model("aim", trained=False)
    model.backbone.blocks[0].extra = Wrong()
    with pytest.raises(ValueError, match="Wrong backbone.blocks.0.extra declares 'v' trainable, but has no parameter"):
        declared_parameters(model)


def test_a_decoder_that_declares_nothing_is_refused():
    with pytest.raises(ValueError, match="decoder Linear does not say which of its parameters train"):
        VideoClassifier(build_vit("tiny_clip"), 5, T, readout="decoder", decoder=torch.nn.Linear(2, 2))

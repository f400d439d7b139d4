"""CUDA checks (skipped without a GPU): bf16 autocast forward/backward of AIM on the device matches fp32 on CPU."""

from __future__ import annotations

import json

import pytest
import torch
from peers import SIZE, randomize_

from vidapter.adapters.aim import set_temporal_attention
from vidapter.classifier import build_model
from vidapter.config import ModelConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _model():
    cfg = ModelConfig(backbone="tiny_clip", num_frames=8, num_classes=5, dropout=0.0, drop_path_rate=0.0)
    return randomize_(build_model(cfg)).eval()


def test_cuda_fp32_matches_cpu():
    model = _model()
    video = torch.randn(2, 3, 8, SIZE, SIZE)
    with torch.no_grad():
        ref = model(video)
        out = model.cuda()(video.cuda()).cpu()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_cuda_bf16_autocast_train_step_is_close_to_fp32():
    model = _model().cuda().train()
    video = torch.randn(2, 3, 8, SIZE, SIZE, device="cuda")
    loss32 = model(video).logsumexp(-1).mean()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss16 = model(video).logsumexp(-1).mean()
    loss16.backward()
    assert abs(loss16.item() - loss32.item()) < 0.05 * abs(loss32.item()) + 0.05
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


@pytest.mark.parametrize("mode", ["pointwise", "mlp"])
def test_cuda_recompute_gives_the_same_gradients(mode):
    """The lean LayerNorm, QuickGELU, linear layers, adapters and MLP call the ops autograd calls (cuBLAS mm, CUDA's
    LayerNorm and GELU backward) on the same values: every weight gradient equals plain autograd's bit for bit.

    Bias gradients are the exception on CUDA: measured on an H200 (torch 2.11,
    benchmarks/model/recompute_identity.py), the
    adapters' bias gradients differed from plain autograd's by up to 3e-5 in ViT-B/16 (1.5e-5 in this model), 6
    tensors per block (by count and names, the biases), under both the default and the math SDPA backend, while two
    plain steps agreed bit for bit. Autograd reduces a linear's bias gradient there differently from ``grad.sum(0)``;
    until that is matched, biases are held to the measured size of the difference, weights to identity
    (docs/benchmarks.md)."""
    import copy

    from vidapter.models.vit import set_recompute

    plain = _model().cuda().train()
    set_recompute(plain, "none")
    lean = copy.deepcopy(plain)
    set_recompute(lean, mode)
    video = torch.randn(2, 3, 8, SIZE, SIZE, device="cuda")
    grads = []
    for m in (plain, plain, lean):
        m.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            m(video).float().logsumexp(-1).mean().backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.requires_grad})
    for name, g in grads[0].items():
        assert torch.equal(g, grads[1][name]), f"plain autograd is not deterministic here: {name}"
        if name.endswith(".bias"):
            torch.testing.assert_close(grads[2][name], g, rtol=2**-7, atol=1e-4, msg=name)
        else:
            assert torch.equal(g, grads[2][name]), name


def test_cuda_training_defaults_compile_and_store_frozen_bf16(tmp_path, caplog):
    """``vidapter train`` on CUDA with the defaults (train.compile=auto, train.frozen_dtype=auto, amp=bf16) compiles
    the model, stores frozen matrices in bf16 and ends within a tenth of its own update of the eager fp32-storage run;
    so does train.compile_mode=reduce-overhead (CUDA graphs). ``vidapter eval``'s CUDA defaults (bf16, compiled) give
    the loss of fp32 on the CPU. Passed on an H200 (2026-11-27) before the CUDA-graph and eval parts were added."""
    from vidapter.checkpoint import load_checkpoint
    from vidapter.cli import main
    from vidapter.data.synthetic import make_synthetic

    data = tmp_path / "data"
    make_synthetic(data, per_class={"train": 2, "val": 1, "test": 1}, size=32, frames=16, seed=1, workers=2)
    common = [
        "--preset", "synthetic", f"--data.root={data}", f"--data.train_list={data / 'train.txt'}",
        f"--data.val_list={data / 'val.txt'}", f"--data.test_list={data / 'test.txt'}",
        f"--data.class_names={data / 'classes.txt'}", "--data.workers=0", "--train.batch_size=4",
        "--train.epochs=1", "--train.max_steps_per_epoch=4", "--optim.warmup_epochs=0", "--train.amp=bf16",
        "--train.device=cuda",
    ]  # fmt: skip
    runs = {}
    variants = (("default", []), ("graphs", ["--train.compile_mode=reduce-overhead"]),
                ("eager", ["--train.compile=false", "--train.frozen_dtype=fp32"]),
                ("start", ["--train.compile=false", "--optim.lr=0"]))  # fmt: skip
    for name, extra in variants:
        caplog.clear()
        with caplog.at_level("INFO", logger="vidapter"):
            assert main(["train", *common, f"--train.run_dir={tmp_path / name}", *extra]) == 0
        assert ("torch.compile: on" in caplog.text) == (name in ("default", "graphs"))
        assert ("frozen matrices stored in bfloat16" in caplog.text) == (name != "eager")
        runs[name] = load_checkpoint(tmp_path / name / "last.pt")["model"]
    eager, start = runs["eager"], runs["start"]
    moved = sum((eager[k].float() - start[k].float()).norm() ** 2 for k in eager) ** 0.5
    assert moved > 0
    for name in ("default", "graphs"):
        run = runs[name]
        assert run.keys() == eager.keys() == start.keys()
        assert all(torch.isfinite(run[k]).all() for k in run), name
        diff = sum((run[k].float() - eager[k].float()).norm() ** 2 for k in eager) ** 0.5
        assert diff <= 0.1 * moved, (name, diff, moved)
    # eval with the defaults on CUDA (bf16 storage and autocast, compiled) against fp32 on the CPU; the default run's
    # validation already ran through its compiled model in eval mode
    metrics = {}
    for name, extra in (("cuda", []), ("cpu", ["--device", "cpu"])):
        out = tmp_path / f"eval_{name}.json"
        assert main(["eval", str(tmp_path / "default"), "--split", "test", "--json", str(out), *extra]) == 0
        metrics[name] = json.loads(out.read_text())
    cuda, cpu = metrics["cuda"], metrics["cpu"]
    assert (cuda["device"], cuda["amp"], cuda["compiled"]) == ("cuda", "bfloat16", True)
    assert (cpu["device"], cpu["amp"], cpu["compiled"]) == ("cpu", "none", False)
    assert cuda["videos"] == cpu["videos"] and abs(cuda["loss"] - cpu["loss"]) < 0.02 * (1 + cpu["loss"])


def test_cuda_compiled_frames_temporal_attention_matches_eager():
    """``model.temporal_attention=frames`` (broadcast products that Triton kernels compute) gives the eager model's
    logits and gradients on CUDA, in fp32 and within bf16's rounding under autocast."""
    model = _model().cuda().train()
    frames = _model().cuda().train()
    frames.load_state_dict(model.state_dict())
    set_temporal_attention(frames, "frames")
    compiled = torch.compile(frames, dynamic=False)
    video = torch.randn(2, 3, 8, SIZE, SIZE, device="cuda")
    for bf16, tol in ((False, 1e-4), (True, 3e-2)):
        outs = []
        for call, m in ((model, model), (compiled, frames)):
            m.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                y = call(video)
            y.float().logsumexp(-1).mean().backward()
            outs.append((y.float(), [p.grad.float() for p in m.parameters() if p.requires_grad]))
        (ref, ref_grads), (out, grads) = outs
        torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
        for g, r in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, atol=tol, rtol=tol * 10 if bf16 else tol)

"""Are the recompute modes' gradients bit-identical to plain autograd's on this device, and if not, why?

For each SDPA backend choice (the default dispatch, and the math backend alone) and each backbone: one bf16-autocast
training step of plain autograd twice (does the device repeat itself?) and of each recompute mode once, on the same
weights and clip; counts the trained tensors whose gradients differ from the first plain step, and the largest
difference, and how many of those are not biases. If plain-vs-plain differs, the device is non-deterministic and
plain-vs-recompute cannot be judged. H200, torch 2.11 (docs/benchmarks.md): plain steps repeat bit for bit under both
backends; only the adapters' bias gradients differ (up to 3e-5), which tests/test_gpu.py holds to that bound. Then a
probe on one linear layer: which reduction of the output gradient reproduces autograd's bias gradient on this device.

    python benchmarks/model/recompute_identity.py --device cuda --out gpu-results/recompute_identity.json
    python benchmarks/model/recompute_identity.py --device cpu --backbones tiny_clip --out /tmp/recompute_identity.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from vidapter.classifier import build_model  # noqa: E402
from vidapter.config import ModelConfig  # noqa: E402
from vidapter.models.vit import BACKBONES, set_recompute  # noqa: E402


def grads_of(model, video, backend) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    ctx = sdpa_kernel(SDPBackend.MATH) if backend == "math" else contextlib.nullcontext()
    with ctx, torch.autocast(video.device.type, dtype=torch.bfloat16):
        model(video).float().logsumexp(-1).mean().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def compare(ref: dict, other: dict) -> dict:
    differ = [n for n in ref if not torch.equal(ref[n], other[n])]
    worst = max(((ref[n] - other[n]).abs().max().item() for n in differ), default=0.0)
    rel = (
        max(((ref[n] - other[n]).abs().max() / ref[n].abs().max().clamp_min(1e-30)).item() for n in differ)
        if differ
        else 0.0
    )
    return {
        "tensors": len(ref),
        "differ": len(differ),
        "differ_not_bias": sum(not n.endswith(".bias") for n in differ),
        "max_abs_diff": worst,
        "max_diff_over_max_abs": rel,
        "first": differ[:3],
    }


def bias_probe(device: torch.device, shapes=((2, 1576, 768, 192), (2, 1576, 192, 768), (4, 197, 64, 16))) -> list:
    """One trained linear layer under bf16 autocast: which way of reducing the output gradient gives autograd's bias
    gradient bit for bit? (B, L, in, out) shapes: ViT-B's adapter fc1 and fc2 at 2 clips of 8 frames, a tiny one."""
    from vidapter.models import lean

    rows = []
    for b, n, cin, cout in shapes:
        torch.manual_seed(0)
        x = torch.randn(b, n, cin, device=device)
        w = (0.02 * torch.randn(cout, cin, device=device)).requires_grad_()
        bias = (0.02 * torch.randn(cout, device=device)).requires_grad_()
        g = torch.randn(b, n, cout, device=device).bfloat16()  # the output's gradient, as a bf16 output receives it
        with torch.autocast(device.type, dtype=torch.bfloat16):
            F.linear(x, w, bias).backward(g)
        plain = bias.grad.clone()
        bias.grad = None
        with torch.autocast(device.type, dtype=torch.bfloat16):
            lean.Linear.apply(x, w, bias).backward(g)
        g2 = g.reshape(-1, cout)
        ones = torch.ones(1, g2.shape[0], device=device, dtype=g2.dtype)
        candidates = {
            "lean.Linear": bias.grad,
            "sum(0) bf16": g2.sum(0).float(),
            "sum((0,1)) bf16": g.sum((0, 1)).float(),
            "sum(0) fp32 then bf16": g2.float().sum(0).bfloat16().float(),
            "sum(0) fp32": g2.float().sum(0),
            "ones @ g (cuBLAS) bf16": (ones @ g2).view(-1).float(),
        }
        row = {"shape": [b, n, cin, cout], "max_abs_plain": plain.abs().max().item()}
        row.update({k: "equal" if torch.equal(v, plain) else f"{(v - plain).abs().max().item():.2e}"
                    for k, v in candidates.items()})  # fmt: skip
        rows.append(row)
        print("bias probe", row, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backbones", nargs="+", default=["tiny_clip", "clip_vitb16"])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    device = torch.device(args.device)
    rows = []
    for backbone in args.backbones:
        torch.manual_seed(0)
        cfg = ModelConfig(backbone=backbone, num_frames=8, num_classes=10, dropout=0.0, drop_path_rate=0.0)
        plain = build_model(cfg).to(device).train()
        with torch.no_grad():  # adapters start as identities (zero fc2): give every trained tensor a gradient path
            for q in plain.parameters():
                if q.requires_grad and q.abs().sum() == 0:
                    q.normal_(0, 0.02)
        set_recompute(plain, "none")
        size = BACKBONES[backbone].image_size
        video = torch.randn(args.batch, 3, 8, size, size, device=device)
        for backend in ("default", "math"):
            ref = grads_of(plain, video, backend)
            row = {"backbone": backbone, "sdpa": backend, "plain_again": compare(ref, grads_of(plain, video, backend))}
            for mode in ("pointwise", "mlp"):
                lean = copy.deepcopy(plain)
                set_recompute(lean, mode)
                row[mode] = compare(ref, grads_of(lean, video, backend))
                del lean
            rows.append(row)
            print(f"{backbone:<14} sdpa={backend:<8} " + "  ".join(
                f"{k}: {row[k]['differ']}/{row[k]['tensors']} differ (max {row[k]['max_abs_diff']:.2e})"
                for k in ("plain_again", "pointwise", "mlp")), flush=True)  # fmt: skip
        del plain
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    probe = bias_probe(device)
    write_record(args.out, "recompute_identity", describe_machine(name), batch=args.batch, rows=rows, bias_probe=probe)


if __name__ == "__main__":
    main()

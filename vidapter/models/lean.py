"""Autograd functions that keep less for backward than plain autograd does, with bit-identical gradients.

Plain autograd keeps, under bf16 autocast: for CLIP's fp32 LayerNorm, an fp32 copy of its bf16 input (the cast's
output is what ``layer_norm`` saves); for QuickGELU ``x * sigmoid(1.702 x)``, both x and the sigmoid. These functions
keep the bf16 input (plus LayerNorm's per-token mean and 1/std) and, in backward, run the same ATen ops autograd would
have run on the same values, so gradients are equal bit for bit (tests/models/test_recompute.py). ``Recompute`` is the
general form: keep a function's inputs, run the function again in backward (used for the MLP hidden layer).
Which module uses what is chosen by ``vidapter.models.vit.set_recompute``; measured in docs/benchmarks.md.
"""

from __future__ import annotations

import torch
from torch.autograd import Function


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's activation, x * sigmoid(1.702 x): the forward that ``QuickGELU``'s backward differentiates by hand."""
    return x * torch.sigmoid(1.702 * x)


def needs_graph(*tensors: torch.Tensor) -> bool:
    """Use these functions only where autograd would record the op, and never inside torch.compile (it partitions
    and recomputes by itself)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors) and not torch.compiler.is_compiling()


class LayerNormFp32(Function):
    """``layer_norm(x.float(), ...).to(x.dtype)`` keeping x (bf16/fp16), mean and 1/std, not the fp32 copy of x."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        shape = (x.shape[-1],)
        out, mean, rstd = torch.native_layer_norm(x.float(), shape, weight.float(), bias.float(), eps)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:3])
        gx, gw, gb = torch.ops.aten.native_layer_norm_backward(
            grad.float(), x.float(), (x.shape[-1],), mean, rstd, weight.float(), bias.float(), mask
        )
        return (gx.to(x.dtype) if gx is not None else None), gw, gb, None


class QuickGELU(Function):
    """``x * sigmoid(1.702 x)`` keeping x only; backward recomputes the sigmoid and applies autograd's own formulas."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return quick_gelu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(1.702 * x)
        # autograd of a * b, b = sigmoid(z), z = 1.702 a: grad*b + sigmoid_backward(grad*a, b) * 1.702
        return grad * s + torch.ops.aten.sigmoid_backward(grad * x, s) * 1.702


class Recompute(Function):
    """``fn(*inputs)``, keeping only the inputs for backward and running ``fn`` again there (under forward's autocast).

    Gradients are bit-identical to plain autograd: backward rebuilds the same graph from the same inputs. ``fn`` must be
    deterministic (no dropout).
    """

    @staticmethod
    def forward(ctx, fn, *inputs):
        dev = inputs[0].device.type
        ctx.fn, ctx.amp = fn, (dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev))
        ctx.save_for_backward(*inputs)
        return fn(*inputs)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad[1:]
        inputs = [t.detach().requires_grad_(need) for t, need in zip(ctx.saved_tensors, needs, strict=True)]
        dev, enabled, dtype = ctx.amp
        with torch.enable_grad(), torch.autocast(dev, dtype=dtype, enabled=enabled):
            out = ctx.fn(*inputs)
        grads = iter(torch.autograd.grad(out, [t for t in inputs if t.requires_grad], grad))
        return (None, *(next(grads) if t.requires_grad else None for t in inputs))

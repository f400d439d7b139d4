"""Autograd functions that keep less for backward than plain autograd does, with the same gradients.

Plain autograd keeps, under bf16 autocast:
- for CLIP's fp32 LayerNorm, an fp32 copy of its bf16 input (the cast's output is what ``layer_norm`` saves);
- for QuickGELU ``x * sigmoid(1.702 x)``, both x and the sigmoid;
- for every frozen linear layer, autocast's bf16 copy of the weight, once per use (autocast caches casts only of
  weights that require grad): 237 MiB for ViT-B/16, whatever the batch;
- for an adapter, its input, its hidden layer before GELU and the same layer after it.
These functions keep the bf16 input (plus LayerNorm's per-token mean and 1/std), a frozen weight itself (a parameter,
no extra memory), an adapter's input and pre-activation only, or nothing at all where the input can be recomputed
elementwise from a tensor that is kept anyway (an adapter fed by a LayerNorm). In backward they recompute what they
dropped and run the same ATen ops autograd would have run on the same values, so gradients are equal bit for bit on
the CPU (tests/models/test_recompute.py). On CUDA (H200, torch 2.11, bf16) every weight gradient and every gradient
that flows on was bit-identical too, but the adapters' bias gradients differed from plain autograd's by up to 3e-5
(72 of 149 trained tensors of ViT-B/16, 6 per block, none a weight): there autograd's bias gradient was the bf16 sum
of the output gradient, the lean one the same sum left in fp32. ``_linear_grads`` now rounds it to the compute dtype;
whether that makes CUDA bit-identical awaits a GPU run (benchmarks/model/recompute_identity.py, docs/benchmarks.md).
``Recompute`` is the general form: keep a function's inputs, run the function again in backward (used for the MLP
hidden layer). Which module uses what is chosen by ``vidapter.models.vit.set_recompute``; measured in
docs/benchmarks.md (benchmarks/model/saved_memory.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd import Function


class Lean:
    """Marker for modules whose backward can keep less (``vit.set_recompute`` switches ``recompute`` on)."""

    recompute = False


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's activation, x * sigmoid(1.702 x): the forward that ``QuickGELU``'s backward differentiates by hand."""
    return x * torch.sigmoid(1.702 * x)


def needs_graph(*tensors: torch.Tensor) -> bool:
    """Use these functions only where autograd would record the op, and never inside torch.compile (it partitions
    and recomputes by itself)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors) and not torch.compiler.is_compiling()


def layer_norm_fp32(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
    """CLIP's LayerNorm of a low-precision x, computed in fp32: (output in x's dtype, mean, 1/std)."""
    out, mean, rstd = torch.native_layer_norm(x.float(), (x.shape[-1],), weight.float(), bias.float(), eps)
    return out.to(x.dtype), mean, rstd


class LayerNormFp32(Function):
    """``layer_norm(x.float(), ...).to(x.dtype)`` keeping x (bf16/fp16), mean and 1/std, not the fp32 copy of x."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        out, mean, rstd = layer_norm_fp32(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        return out

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
        # autograd of a * b, b = sigmoid(z), z = 1.702 a: grad*b + sigmoid_backward(grad*a, b) * 1.702, computed in
        # place so that backward holds two MLP-wide tensors besides grad and x, not five (the same values: in-place
        # elementwise ops compute what their out-of-place forms do, and grad*b == b*grad)
        s = (1.702 * x).sigmoid_()
        dz = grad * x
        torch.ops.aten.sigmoid_backward.grad_input(dz, s, grad_input=dz)
        return s.mul_(grad).add_(dz.mul_(1.702))


class Recompute(Function):
    """``fn(*inputs)``, keeping only the inputs for backward and running ``fn`` again there (under forward's autocast).

    With ``normed_from=(norm, src)`` (src detached), the first input is ``norm(src)`` and is not kept either: backward
    recomputes it from ``src`` (which the norm keeps anyway). Gradients are bit-identical to plain autograd: backward
    rebuilds the same graph from the same inputs. ``fn`` and ``norm`` must be deterministic (no dropout).
    """

    @staticmethod
    def forward(ctx, fn, normed_from, *inputs):
        ctx.fn, ctx.amp = fn, _autocast_state(inputs[0])
        ctx.norm = normed_from[0] if normed_from is not None else None
        if ctx.norm is None:
            ctx.save_for_backward(*inputs)
        else:
            ctx.save_for_backward(normed_from[1], *inputs[1:])
        return fn(*inputs)

    @staticmethod
    def backward(ctx, grad):
        saved = list(ctx.saved_tensors)
        if ctx.norm is not None:
            with torch.no_grad(), _autocast(ctx.amp):
                saved[0] = ctx.norm(saved[0])
        needs = ctx.needs_input_grad[2:]
        inputs = [t.detach().requires_grad_(need) for t, need in zip(saved, needs, strict=True)]
        with torch.enable_grad(), _autocast(ctx.amp):
            out = ctx.fn(*inputs)
        grads = iter(torch.autograd.grad(out, [t for t in inputs if t.requires_grad], grad))
        return (None, None, *(next(grads) if t.requires_grad else None for t in inputs))


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a linear layer computes in: autocast's where it is on, else the input's."""
    dev, enabled, dtype = _autocast_state(x)
    return dtype if enabled else x.dtype


def _linear(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """Autocast's linear, done by hand. Returns (output, x as computed with, the weight to keep for backward).

    The weight to keep: a trained weight's low-precision copy (autocast keeps it too, and it is small); a frozen
    weight itself, to be cast again in backward (autocast would keep a copy per use). Remembers dtypes on ``ctx``.
    """
    dt = compute_dtype(x)
    ctx.dt, ctx.x_dtype, ctx.w_dtype = dt, x.dtype, weight.dtype
    ctx.b_dtype = bias.dtype if bias is not None else None
    xc, wc = x.to(dt), weight.to(dt)
    out = F.linear(xc, wc, bias.to(dt) if bias is not None else None)
    return out, xc, (wc if weight.requires_grad else weight)


def _linear_grads(ctx, grad, xc, weight, needs: tuple[bool, bool, bool]):
    """The gradients autograd computes for ``linear(x, w, b)`` (contiguous x: view, addmm(b, x2d, w.t()), view).

    x: ``grad2d.mm(w)``; w: ``grad2d.t().mm(x2d)``; b: ``grad2d.sum(0, keepdim)``; each cast back where autocast cast.
    """
    g2 = grad.reshape(-1, grad.shape[-1])
    gx = gw = gb = None
    if needs[0]:
        gx = g2.mm(weight.to(ctx.dt)).reshape(*grad.shape[:-1], weight.shape[1]).to(ctx.x_dtype)
    if needs[1]:
        gw = g2.t().mm(xc.reshape(-1, xc.shape[-1])).to(ctx.w_dtype)
    if needs[2]:  # rounded to the compute dtype like autograd's (on an H200 lean's was an unrounded fp32 sum)
        gb = g2.sum([0], keepdim=True).view(-1).to(ctx.dt).to(ctx.b_dtype)
    return gx, gw, gb


class Linear(Function):
    """``linear(x, w, b)`` keeping x only if w trains, and no copy of a frozen w (backward casts it again)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        out, xc, w = _linear(ctx, x, weight, bias)
        ctx.save_for_backward(xc if weight.requires_grad else None, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        xc, weight = ctx.saved_tensors
        return _linear_grads(ctx, grad, xc, weight, ctx.needs_input_grad)


class GeluLinear(Function):
    """``linear(gelu(h), w, b)`` (an adapter's second half) keeping h only: backward recomputes gelu(h)."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        ctx.amp = _autocast_state(h)
        out, _, w = _linear(ctx, F.gelu(h), weight, bias)
        ctx.save_for_backward(h, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        with _autocast(ctx.amp):
            a = F.gelu(h)
        ga, gw, gb = _linear_grads(ctx, grad, a.to(ctx.dt), weight, ctx.needs_input_grad)
        return (torch.ops.aten.gelu_backward(ga, h) if ga is not None else None), gw, gb


class NormLinear(Function):
    """``linear(y, w, b)`` where ``y = norm(src)``, keeping ``src`` (detached; the norm keeps it anyway), not y.

    Backward recomputes y with ``norm`` (elementwise, under forward's autocast). ``norm`` must reproduce y bit for bit.
    """

    @staticmethod
    def forward(ctx, norm: Callable[[torch.Tensor], torch.Tensor], src, y, weight, bias):
        ctx.norm, ctx.amp = norm, _autocast_state(y)
        out, _, w = _linear(ctx, y, weight, bias)
        ctx.save_for_backward(src, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        src, weight = ctx.saved_tensors
        with torch.no_grad(), _autocast(ctx.amp):
            y = ctx.norm(src)
        gy, gw, gb = _linear_grads(ctx, grad, y.to(ctx.dt), weight, ctx.needs_input_grad[2:])
        return None, None, gy, gw, gb


def _autocast_state(x: torch.Tensor) -> tuple[str, bool, torch.dtype]:
    dev = x.device.type
    if dev == "meta":  # no autocast there (FLOP counting on meta tensors)
        return dev, False, x.dtype
    return dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev)


def _autocast(state: tuple[str, bool, torch.dtype]):
    dev, enabled, dtype = state
    return torch.autocast(dev, dtype=dtype, enabled=enabled) if dev != "meta" else contextlib.nullcontext()

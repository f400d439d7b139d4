"""Timing: calls after a warm-up, with CUDA synchronised around the clock; peak memory; GPU kernel time by kind.

A CUDA kernel runs after the Python call that launched it returns, so every timer here synchronises the device
before reading the clock. The first calls of a step pay for compilation, allocator growth and lazy initialisation:
each timer takes ``warmup`` untimed calls first."""

from __future__ import annotations

import collections
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

MIB = 2**20


def sync(device: str | torch.device) -> None:
    """Wait for the device's queued kernels (a no-op off CUDA)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[], object], device: str | torch.device, warmup: int, iters: int) -> float:
    """Mean seconds per call of ``fn`` over ``iters`` calls timed together, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def median_seconds(fn: Callable[[], object], device: str | torch.device, warmup: int, iters: int) -> float:
    """Median seconds of ``iters`` calls of ``fn`` timed one by one, after ``warmup`` untimed calls: robust to the
    odd slow call of a shared machine, where a mean over few calls is not."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def max_rss_mib() -> float:
    """The process's maximum resident set size so far, MiB (it never goes down)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: str | torch.device) -> None:
    """Start a peak-memory measurement: on CUDA, free cached blocks and reset ``max_memory_allocated``. A CPU has no
    reset (the process max RSS is monotone): read ``max_rss_mib()`` before and after instead."""
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: str | torch.device) -> float:
    """Peak memory since ``reset_peak``, MiB: CUDA's ``max_memory_allocated``; on a CPU the process max RSS."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / MIB
    return max_rss_mib()


MATMUL = ("gemm", "cutlass", "xmma", "cublas", "addmm", "aten::mm", "aten::bmm", "convolution", "conv2d", "nvjet")
ATTENTION = ("flash", "fmha", "attention", "sdpa", "efficient")


def kernel_kind(name: str) -> str:
    """matmul, attention or other, by a GPU kernel's (or an ATen op's) name."""
    low = name.lower()
    if any(k in low for k in ATTENTION):
        return "attention"
    if any(k in low for k in MATMUL):
        return "matmul"
    return "other"


def kernel_time(step: Callable[[], object], steps: int, cuda: bool, wall_ms: float) -> dict:
    """``steps`` calls of ``step`` under the profiler: kernel (CUDA) or ATen op (CPU) self time per step by kind, and
    the busy fraction against ``wall_ms``, the step's wall time measured without the profiler."""
    with profile(activities=[ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    ms = collections.Counter()
    count = collections.Counter()
    for evt in prof.key_averages():
        if cuda and evt.device_type != torch.autograd.DeviceType.CUDA:
            continue
        if not cuda and not evt.key.startswith("aten::"):
            continue
        self_us = getattr(evt, "self_device_time_total", 0) if cuda else evt.self_cpu_time_total
        ms[kernel_kind(evt.key)] += self_us / 1e3 / steps
        count[kernel_kind(evt.key)] += evt.count / steps
    total = sum(ms.values())
    ms = dict(ms.most_common())
    return {
        "ms_per_step": total,
        "wall_ms_per_step": wall_ms,
        "busy": total / wall_ms,
        "ms": ms,
        "kernels_per_step": dict(count),
        "fraction": {k: v / total for k, v in ms.items()} if total else {},
    }

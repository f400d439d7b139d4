"""Where and how a model runs: device, autocast dtype, frozen-weight storage and torch.compile, decided in one place
for training, evaluation and prediction. ``Runtime.autocast()`` is the one autocast context every forward uses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from dataclasses import dataclass

import torch
from torch import nn

from vidapter.adapters.peft import store_frozen_matrices_
from vidapter.errors import ConfigError

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{field}=cuda but no CUDA device is available")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"{field} must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device, field: str = "train.amp") -> torch.dtype | None:
    """``none`` -> None (the model's own precision), ``bf16``, ``fp16`` (CUDA only: the CPU refuses it)."""
    if amp == "none":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError(f"{field}=fp16 needs CUDA; use bf16 or none on CPU")
        return torch.float16
    raise ConfigError(f"{field} must be none, bf16 or fp16, got {amp!r}")


def resolve_compile(value: bool | str, device: torch.device, field: str = "train.compile") -> bool:
    """``train.compile``: auto compiles on CUDA (GPUs Triton generates code for) and not on the CPU.

    CUDA: ViT-B/16's train step at batch 32 on an H200 runs at 2.24x the reference design compiled, 1.19x eager, after
    about a minute of compiling (docs/benchmarks.md). CPU: compiling needs a C++ toolchain and takes 20 s even for the
    demo model, for 1.3x; ViT-B's compile ran out of memory on a 23 GiB machine."""
    if value == "auto":
        return device.type == "cuda" and _inductor_supports(device)
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{field} must be auto, true or false, got {value!r}")


def resolve_compile_mode(mode: str) -> str:
    """``train.compile_mode``, torch.compile's mode. reduce-overhead replays the compiled forward and backward as CUDA
    graphs: where the CPU cannot launch kernels as fast as the GPU runs them (ViT-B/16 at batch 8 on an H200 with a
    slow CPU), it ran the train step at 1.90x the reference against 1.37x-2.36x for default (benchmarks only, one
    process; docs/benchmarks.md). Its graphs keep their own memory pool and one graph per input shape."""
    if mode not in COMPILE_MODES:
        raise ConfigError(f"train.compile_mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    return mode


def _inductor_supports(device: torch.device) -> bool:
    """Whether torch.compile's default backend can generate kernels for this GPU: Triton installed and a GPU of compute
    capability 7.0 or newer (older ones fail at the first step; auto then stays eager and says so)."""
    major, minor = torch.cuda.get_device_capability(device)
    triton = importlib.util.find_spec("triton") is not None
    if triton and (major, minor) >= (7, 0):
        return True
    log.warning("compile auto: not compiling (Triton %s, GPU compute capability %d.%d; needs 7.0)",
                "found" if triton else "missing", major, minor)  # fmt: skip
    return False


def resolve_frozen_dtype(value: str, amp: torch.dtype | None) -> torch.dtype | None:
    """``train.frozen_dtype``: the dtype to store frozen matrices in, or None to leave them as loaded. auto is bf16
    under bf16 autocast, where it is exact (autocast casts them to bf16 at every use anyway), else None."""
    if value == "auto":
        return torch.bfloat16 if amp == torch.bfloat16 else None
    if value == "fp32":
        return None
    if value == "bf16":
        if amp != torch.bfloat16:
            raise ConfigError("train.frozen_dtype=bf16 needs train.amp=bf16 (it is exact only under bf16 autocast)")
        return torch.bfloat16
    raise ConfigError(f"train.frozen_dtype must be auto, fp32 or bf16, got {value!r}")


@dataclass(frozen=True)
class Runtime:
    """The decisions every forward shares: device, autocast dtype (None: fp32), frozen-matrix storage dtype (None: as
    loaded), whether to compile and with which mode."""

    device: torch.device
    amp: torch.dtype | None = None
    frozen_dtype: torch.dtype | None = None
    compile: bool = False
    compile_mode: str = "default"

    @property
    def amp_name(self) -> str:
        return str(self.amp).removeprefix("torch.") if self.amp is not None else "none"

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for this device and dtype (disabled without AMP)."""
        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def compiled(self, model: nn.Module) -> nn.Module:
        """The model under torch.compile with this mode, or the model itself."""
        if not self.compile:
            return model
        return torch.compile(model, mode=None if self.compile_mode == "default" else self.compile_mode)


def training_runtime(train) -> Runtime:
    """The runtime the ``train`` section (``TrainConfig``) asks for; each bad value raises naming its field."""
    device = resolve_device(train.device)
    amp = autocast_dtype(train.amp, device)
    return Runtime(device, amp, resolve_frozen_dtype(train.frozen_dtype, amp), resolve_compile(train.compile, device),
                   resolve_compile_mode(train.compile_mode))  # fmt: skip


def inference_runtime(device: str = "auto", amp: str = "auto", compile: bool | str = False) -> Runtime:
    """Evaluation and prediction (``--device``, ``--amp``, ``--compile``): amp auto is bf16 on CUDA and none (fp32) on
    the CPU; the frozen matrices are stored as ``train.frozen_dtype=auto`` does (bf16 under bf16 autocast: exact)."""
    dev = resolve_device(device, field="--device")
    dtype = autocast_dtype(("bf16" if dev.type == "cuda" else "none") if amp == "auto" else amp, dev, field="--amp")
    compile = {"true": True, "false": False}.get(compile, compile) if isinstance(compile, str) else compile
    return Runtime(dev, dtype, resolve_frozen_dtype("auto", dtype), resolve_compile(compile, dev, field="--compile"))


def place_for_inference(model: nn.Module, rt: Runtime) -> nn.Module:
    """Move ``model`` to the runtime's device with its frozen matrices in the runtime's storage dtype; returns it."""
    model.to(rt.device)
    if rt.frozen_dtype is not None:
        store_frozen_matrices_(model, rt.frozen_dtype)
    return model

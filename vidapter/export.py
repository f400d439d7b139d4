"""A trained model as a program other runtimes run: ONNX (onnxruntime, TensorRT, OpenVINO, ...) or a ``torch.export``
program (``.pt2``), batch a dynamic axis, checked against the PyTorch model after writing.

The program takes what the model's forward takes: a float32 video (B, 3, T, H, W) normalised with the model's
mean/std on the 0-255 scale, and returns logits (B, C). ``uint8=True`` exports the variant that takes the decoded
frames (B, T, H, W, 3) as uint8 RGB and normalises inside. What a caller must do before (sampling T frames, the
resize and crop, the normalisation, how test views are combined) is in the file's metadata as JSON (``preprocessing``)
and printed by ``vidapter export``: ONNX's ``metadata_props["vidapter"]``, the ``.pt2`` archive's extra file
``vidapter.json``. ``read_metadata`` reads both.

``check_exported`` runs the written program (onnxruntime for ONNX) and the PyTorch model on the same inputs, random
clips at batch 1 and 3 and one decoded clip, and returns the largest logit difference; ``vidapter export`` fails
above its tolerance.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidapter.data.build import normalisation
from vidapter.errors import ConfigError, MissingDependency, VidapterError
from vidapter.version import __version__

EXPORT_VERSION = 1  # the metadata's schema; read_metadata reads every version up to this one
DEFAULT_OPSET = 18


class ExportError(VidapterError):
    """The exported program could not be written, or does not compute what the model computes."""


def preprocessing(model: nn.Module, cfg, uint8: bool = False) -> dict:
    """What a caller does to a video before the program: the frames it samples, the resize and crop, the input's
    dtype and layout, the normalisation (inside the program for ``uint8``), and how test views are combined."""
    facts = model.backbone.facts
    mean, std = normalisation(cfg.data, facts.mean, facts.std)
    d = cfg.data
    sampling = {"dense": f"{cfg.model.num_frames} frames every {d.frame_interval} source frames, "
                         f"{d.test_clips} clips spread evenly over the video",
                "uniform": f"{cfg.model.num_frames} segments of equal length, the centre frame of each",
                "segments_seq": f"{cfg.model.num_frames} segments, the centre frame of each (SlowFast's "
                                "get_seq_frames)"}.get(d.sampling, d.sampling)  # fmt: skip
    sigmoid = bool(getattr(model.head, "sigmoid", False))
    return {
        "input": "uint8 frames (B, T, H, W, 3), RGB" if uint8 else "float32 video (B, 3, T, H, W), RGB",
        "normalisation": "inside the program" if uint8 else "(pixel - mean) / std, pixels on the 0-255 scale",
        "frames": cfg.model.num_frames,
        "size": d.size,
        "resize": f"short side to {d.test_short_side} (bilinear), then {d.test_crops} crop(s) of {d.size} "
        f"({'centre' if d.test_crops == 1 else 'left/centre/right or top/centre/bottom'})",
        "mean": mean,
        "std": std,
        "sampling": d.sampling,
        "sampling_rule": sampling,
        "frame_interval": d.frame_interval if d.sampling == "dense" else None,
        "test_views": {"clips": d.test_clips if d.sampling == "dense" else 1, "crops": d.test_crops},
        "scores": "sigmoid(logits), per class" if sigmoid else "softmax(logits) over classes",
        "views_combined": "mean of the views' scores",
    }


class UInt8Input(nn.Module):
    """The model behind the normalisation: (B, T, H, W, 3) uint8 RGB frames -> logits."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 4, 1, 2, 3).float()
        return self.model((x - self.mean) / self.std)


def export_target(model: nn.Module, cfg, uint8: bool = False) -> tuple[nn.Module, torch.Tensor]:
    """The module to export (the model, or ``UInt8Input`` around it) and an example input at batch 2."""
    model = model.eval()
    t, s = cfg.model.num_frames, cfg.data.size
    g = torch.Generator().manual_seed(0)
    if uint8:
        mean, std = normalisation(cfg.data, model.backbone.facts.mean, model.backbone.facts.std)
        return UInt8Input(model, mean, std).eval(), torch.randint(0, 256, (2, t, s, s, 3), generator=g).to(torch.uint8)
    return model, torch.randn(2, 3, t, s, s, generator=g)


def metadata(model: nn.Module, cfg, names: list[str] | None, fmt: str, uint8: bool, opset: int | None) -> dict:
    """The JSON the exported file carries: its schema version, the versions that wrote it, the model, classes and
    preprocessing."""
    versions = {"vidapter": __version__, "torch": torch.__version__, "python": platform.python_version()}
    if fmt == "onnx":
        import onnx

        versions["onnx"] = onnx.__version__
    return {
        "format": "vidapter-export",
        "version": EXPORT_VERSION,
        "program": fmt,
        "opset": opset,
        "versions": versions,
        "backbone": cfg.model.backbone,
        "method": cfg.model.method,
        "classes": list(names) if names else [str(i) for i in range(model.num_classes)],
        "preprocessing": preprocessing(model, cfg, uint8),
        "output": "logits (B, C)",
        "dynamic": ["batch"],
    }


def _trace(target: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        target(example)  # caches (RoPE tables, text-head classes) hold real tensors before the trace reads them
        try:
            return torch.export.export(target, (example,), dynamic_shapes=({0: batch},), strict=False)
        except Exception as e:  # torch.export's own errors: a bug to fix here, with its traceback kept
            raise ExportError(f"torch.export could not trace the model with a dynamic batch: {e}") from e


def export_torch(model: nn.Module, cfg, path: str | os.PathLike, names: list[str] | None = None,
                 uint8: bool = False) -> Path:  # fmt: skip
    """Write the ``torch.export`` program (``torch.export.load(path).module()(x)``) with its metadata."""
    target, example = export_target(model, cfg, uint8)
    program = _trace(target, example)
    path = Path(path)
    meta = metadata(model, cfg, names, "torch.export", uint8, None)
    tmp = _partial(path)
    torch.export.save(program, str(tmp), extra_files={"vidapter.json": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def export_onnx(model: nn.Module, cfg, path: str | os.PathLike, names: list[str] | None = None, uint8: bool = False,
                opset: int = DEFAULT_OPSET, optimize: bool = True) -> Path:  # fmt: skip
    """Write the ONNX program (one file; weights beside it as ``PATH.data`` above 1.5 GB) with its metadata under
    ``metadata_props["vidapter"]``. Needs ``onnx`` and ``onnxscript`` (``pip install 'vidapter[onnx]'``)."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise MissingDependency("ONNX export needs onnx and onnxscript: pip install 'vidapter[onnx]'") from None
    target, example = export_target(model, cfg, uint8)
    program = _trace(target, example)
    path = Path(path)
    big = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > 1.5e9
    tmp = _partial(path)
    quiet = [logging.getLogger(n) for n in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [q.level for q in quiet]
    for q in quiet:  # the optimizer logs each folded constant at INFO
        q.setLevel(logging.WARNING)
    try:
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, opset_version=opset, optimize=optimize,
                                         input_names=["video"], output_names=["logits"], verbose=False)  # fmt: skip
    except Exception as e:
        raise ExportError(f"ONNX export failed at opset {opset}: {e}") from e
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
    proto = onnx_program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "vidapter", json.dumps(metadata(model, cfg, names, "onnx", uint8, opset))
    onnx.save_model(proto, str(tmp), save_as_external_data=big, location=path.name + ".data" if big else None)
    os.replace(tmp, path)
    return path


def _partial(path: Path) -> Path:
    """Where a program is written before it replaces ``path``: beside it, hidden, with its suffix (torch.export
    refuses an archive whose name does not end in .pt2)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a file ``export_onnx`` or ``export_torch`` wrote (any version up to this one's)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        raw = next((p.value for p in proto.metadata_props if p.key == "vidapter"), None)
    else:
        import zipfile

        with zipfile.ZipFile(path) as z:
            entry = next((n for n in z.namelist() if n.endswith("extra/vidapter.json")), None)
            raw = z.read(entry).decode() if entry else None
    if raw is None:
        raise ConfigError(f"{path}: no vidapter metadata (not written by vidapter export)")
    meta = json.loads(raw)
    if meta.get("version", 0) > EXPORT_VERSION:
        raise ConfigError(f"{path}: written by a newer vidapter (export version {meta['version']}): upgrade to read it")
    return meta


def runner(path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """A function running the exported program on a numpy input: onnxruntime for ``.onnx`` (CPU), the loaded
    ``torch.export`` program otherwise."""
    path = Path(path)
    if path.suffix == ".onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependency("checking an ONNX file needs onnxruntime: pip install 'vidapter[onnx]'") from None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    module = torch.export.load(str(path)).module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def check_inputs(model: nn.Module, cfg, uint8: bool = False, clip: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Random inputs at batch 1 and 3 and, when given, one decoded clip (V, 3, T, H, W, normalised), in the
    program's input form."""
    t, s = cfg.model.num_frames, cfg.data.size
    g = torch.Generator().manual_seed(1)
    if uint8:
        inputs = [torch.randint(0, 256, (b, t, s, s, 3), generator=g).to(torch.uint8) for b in (1, 3)]
    else:
        inputs = [torch.randn(b, 3, t, s, s, generator=g) for b in (1, 3)]
    if clip is not None:
        if uint8:
            mean, std = normalisation(cfg.data, model.backbone.facts.mean, model.backbone.facts.std)
            m, sd = torch.tensor(mean).view(1, 3, 1, 1, 1), torch.tensor(std).view(1, 3, 1, 1, 1)
            clip = (clip * sd + m).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1)
        inputs.append(clip)
    return inputs


def check_exported(path: str | os.PathLike, model: nn.Module, cfg, inputs: list[torch.Tensor],
                   uint8: bool = False) -> tuple[float, float]:  # fmt: skip
    """The largest absolute logit difference between the exported program and the model over ``inputs``, and the
    largest absolute logit (the scale of a relative tolerance)."""
    target, _ = export_target(model, cfg, uint8)
    run = runner(path)
    worst = peak = 0.0
    for x in inputs:
        with torch.no_grad():
            want = target(x).float().numpy()
        got = run(x.numpy())
        if got.shape != want.shape:
            raise ExportError(f"{path}: logits of shape {got.shape} for input {tuple(x.shape)}, expected {want.shape}")
        worst, peak = max(worst, float(np.abs(got - want).max())), max(peak, float(np.abs(want).max()))
    return worst, peak

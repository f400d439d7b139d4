"""One JSON record per benchmark run: what ran (the command), when, where (the machine), and the results."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]  # the repository root
DOCS = REPO / "docs"  # docs/benchmarks.md and, under docs/results/, the raw files of its numbers


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (a VM may hide it), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return cpu


def describe_machine(device: str, **extra) -> dict:
    """The machine a benchmark ran on: torch and Python versions, platform, CPU model, listed cores, torch threads,
    the GPU and CUDA version where there is one, and ``device``, what the benchmark ran on in the script's own words
    (``"cpu"``, ``"cuda"``, a GPU's name, ``"cpu (bf16 autocast)"``). ``extra`` adds entries or replaces them.

    Call it when the work is done: naming the GPU starts CUDA, which processes forked after it must not use."""
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    return info | extra


def video_libraries() -> dict:
    """Versions of the video and image libraries the data benchmarks read with (PyAV and the libavcodec it bundles,
    torchvision, decord, torchcodec); a missing optional one is recorded with the reason."""
    import av

    info = {"av": av.__version__, "av_libavcodec": ".".join(map(str, av.library_versions["libavcodec"]))}
    for mod in ("torchvision", "decord", "torchcodec"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # record why an optional backend is missing
            info[mod] = f"unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    return info


def write_record(path: str | Path, benchmark: str, machine: dict, **fields) -> dict:
    """Write ``{"benchmark", "date", "command", "machine", **fields}`` as JSON to ``path`` (folders made; written to a
    temporary file first, so a run stopped while writing keeps the previous record) and return it. Scripts that
    measure for long call it after every case, so a run cut off at a time limit keeps what it finished."""
    record = {
        "benchmark": benchmark,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        **fields,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return record

"""One JSON record per benchmark run: what ran, when, where, and the results."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch


def write_record(path: str | Path, benchmark: str, device: str, machine: dict | None = None, **fields) -> dict:
    """Write ``{"benchmark", "date", "command", "machine", **fields}`` to ``path`` (folders made) and return it.
    ``machine`` adds entries to the machine description (torch, platform, CPUs, torch threads, device)."""
    record = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "torch": torch.__version__,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": device,
            **(machine or {}),
        },  # fmt: skip
        **fields,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2) + "\n")
    return record

"""Training checkpoints: plain dicts of tensors, numbers, strings, lists and dicts, written atomically (temporary file
+ os.replace) and read with PyTorch's restricted loader, so that a checkpoint someone shares cannot run code.

The RNG states are stored in those types too (NumPy's and Python's Mersenne Twister keys as int64 tensors) and restore
bit for bit. Checkpoints of vidapter 0.1 held the NumPy state as an array: the restricted loader reads those as well
(a NumPy array of a plain dtype is data), so they still load, and resume under the optimizer rules they were trained
with (``--optim.decay_groups=norm_bias_embed --optim.schedule=step_cosine``; the engine names what differs).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from vidapter.files import FileError, load_torch_file, write_atomic

FORMAT = "vidapter-checkpoint"
VERSION = 3  # 3: the config carries its schema version, and the running sums of the epoch under way
# (epoch_totals); 2 (vidapter 0.2): RNG states as tensors and lists (restricted-loader types); 1 (0.1): NumPy/Python
# RNG states as pickled. Every older version is read: the config migrates (config.migrate), missing sums start at 0
# what every reader needs, and what resuming needs besides; a file without one of them is refused, the keys named
REQUIRED_KEYS = ("model", "config", "backbone", "epoch", "batch", "step")
RESUME_KEYS = ("optimizer", "scheduler", "rng", "best", "history")


class CheckpointError(FileError):
    """A training checkpoint that cannot be used; the message names the file and what is wrong."""


def rng_state() -> dict:
    """Every RNG state of this process as tensors, numbers and strings (what the restricted loader reads)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, mt, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },  # fmt: skip
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` saved (or what vidapter 0.1 saved: NumPy's tuple, Python's tuple)."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    if isinstance(npy, dict):
        npy = (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    np.random.set_state(npy)
    py = state["python"]
    if isinstance(py, dict):
        py = (py["version"], tuple(py["state"].tolist()), py["gauss_next"])
    random.setstate(py)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict, path: str | os.PathLike, intact: str = "") -> Path:
    """Write ``state`` with torch.save through a temporary file in the same folder, then os.replace; a failed write
    leaves the previous file whole and raises ``WriteError`` ending with ``intact``."""
    state = {"format": FORMAT, "version": VERSION, **state}
    return write_atomic(path, lambda f: torch.save(state, f), intact)


def load_checkpoint(path: str | os.PathLike, trust_pickle: bool = False, resume: bool = False) -> dict:
    """Read a vidapter training checkpoint with the restricted loader (``trust_pickle``: full pickle, for a file from
    a source you trust). Anything else, damaged or incomplete (for ``resume``: without the optimizer, scheduler and
    RNG states), is a one-line ``CheckpointError``."""
    path = Path(path)
    try:
        state = load_torch_file(path, trust_pickle)
    except FileError as e:
        raise CheckpointError(str(e)) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        what = f"format {state.get('format')!r}" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(f"{path}: not a vidapter training checkpoint ({what}; expected format {FORMAT!r})")
    version = state.get("version", 1)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: written by a newer vidapter (checkpoint version {version!r}; this one reads up "
                              f"to {VERSION}): upgrade vidapter to read it")  # fmt: skip
    missing = [k for k in REQUIRED_KEYS + (RESUME_KEYS if resume else ()) if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete vidapter checkpoint, missing {', '.join(missing)}")
    wrong = [k for k in ("model", "config", "backbone") if not isinstance(state[k], dict)]
    if wrong:
        raise CheckpointError(f"{path}: {', '.join(wrong)} must be a dict, got {type(state[wrong[0]]).__name__}")
    odd = [k for k, v in state["model"].items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise CheckpointError(f"{path}: 'model' holds non-tensor values ({', '.join(map(str, odd[:4]))})")
    return state

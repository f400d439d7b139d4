"""Run records on rank 0: a progress line, JSONL metrics, TensorBoard (when installed), end-of-run reports."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from vidapter.files import append_line, write_atomic, write_text

log = logging.getLogger(__name__)


class RunLog:
    """``metrics.jsonl`` (one JSON object per record), TensorBoard scalars, and a one-line progress bar on stderr."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True, tensorboard: bool = True):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.intact = ""  # what a failed write says is still whole; the engine keeps it current
        self.writer = None
        self._last_line = 0.0
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed: metrics go to metrics.jsonl only (pip install tensorboard)")

    def record(self, split: str, step: int, **metrics) -> None:
        if not self.enabled:
            return
        row = {"split": split, "step": step, "time": round(time.time(), 3), **metrics}
        append_line(self.run_dir / "metrics.jsonl", json.dumps(row), self.intact)
        if self.writer is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self.writer.add_scalar(f"{split}/{k}", v, step)

    def progress(self, epoch: int, epochs: int, batch: int, batches: int, **fields) -> None:
        """Rewrite one status line on a terminal (at most 4 times a second); elsewhere (logs, CI) one line per
        quarter epoch."""
        if not self.enabled:
            return
        if not sys.stderr.isatty():
            quarter = max(1, batches // 4)
            if (batch + 1) % quarter and batch + 1 < batches:
                return
        elif time.monotonic() - self._last_line < 0.25 and batch + 1 < batches:
            return
        self._last_line = time.monotonic()
        done = int(20 * (batch + 1) / max(batches, 1))
        text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        end = "\n" if batch + 1 >= batches or not sys.stderr.isatty() else ""
        print(f"\repoch {epoch + 1}/{epochs} [{'#' * done}{'.' * (20 - done)}] {batch + 1}/{batches} {text}",
              end=end, file=sys.stderr, flush=True)  # fmt: skip

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_reports(
    run_dir: str | os.PathLike, history: list[dict], confusion: np.ndarray | None, names: list[str], intact: str = ""
):
    """PNG curves (loss, accuracy), per-class accuracy CSV and a confusion-matrix PNG in ``run_dir``, each written
    atomically; a failed write is a ``WriteError`` ending with ``intact``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    epochs = [h["epoch"] + 1 for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if any("val_loss" in h for h in history):
        axes[0].plot([h["epoch"] + 1 for h in history if "val_loss" in h],
                     [h["val_loss"] for h in history if "val_loss" in h], marker="o", label="val")  # fmt: skip
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0].legend()
    axes[1].plot(epochs, [h["train_top1"] for h in history], marker="o", label="train (augmented)")
    if any("val_top1" in h for h in history):
        axes[1].plot([h["epoch"] + 1 for h in history if "val_top1" in h],
                     [h["val_top1"] for h in history if "val_top1" in h], marker="o", label="val")  # fmt: skip
    axes[1].set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy", ylim=(0, 1))
    axes[1].legend()
    fig.tight_layout()
    try:
        write_atomic(run_dir / "curves.png", lambda f: fig.savefig(f, format="png", dpi=100), intact)
    finally:
        plt.close(fig)
    if confusion is None:
        return
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    table = io.StringIO(newline="")
    w = csv.writer(table)
    w.writerow(["label", "class", "videos", "accuracy"])
    for i, name in enumerate(names):
        w.writerow([i, name, int(confusion[i].sum()), f"{per_class[i]:.4f}"])
    write_text(run_dir / "per_class_accuracy.csv", table.getvalue(), intact)
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * k + 2), max(4, 0.35 * k + 1.5)))
    norm = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 60:
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title="confusion (row-normalised)")
    fig.tight_layout()
    try:
        write_atomic(run_dir / "confusion.png", lambda f: fig.savefig(f, format="png", dpi=100), intact)
    finally:
        plt.close(fig)

"""Data loading: workers, pinned memory, persistent workers, DistributedSampler, reproducible epochs, skip reports.

Reproducibility: the sampler hands the dataset ``(epoch, index)`` pairs and the dataset draws all randomness from
(seed, epoch, index), so an epoch's clips do not depend on the number of workers, on which worker loads which clip,
or on the number of processes (DDP). Shuffling is ``DistributedSampler``'s (seeded with ``seed``, reshuffled per
epoch by ``set_epoch``); with one process it is the same sampler with one replica.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from vidapter.files import append_line

log = logging.getLogger(__name__)


class EpochSampler(Sampler):
    """``DistributedSampler`` whose items carry their epoch: yields ``(epoch, index)``. ``set_epoch(e, skip=k)``
    starts the epoch after its first k items (resuming mid-epoch)."""

    def __init__(self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1, drop_last=False):
        self.inner = DistributedSampler(
            range(size), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for n, i in enumerate(self.inner) if n >= self.skip)

    def __len__(self) -> int:
        return len(self.inner) - self.skip


def collate(items: list[dict]) -> dict:
    """Stack videos and labels; concatenate the skipped-file reports. Items whose video could not be read (evaluation
    only: the dataset does not substitute there) leave the batch and are listed under ``unreadable`` as (index,
    label, path, reason); ``video`` is None when no item of the batch was readable."""
    readable = [it for it in items if it["video"] is not None]
    return {
        "video": torch.stack([it["video"] for it in readable]) if readable else None,
        "label": torch.tensor([it["label"] for it in readable], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in readable], dtype=torch.long),
        "skipped": [s for it in items for s in it["skipped"]],
        "unreadable": [(it["index"], it["label"], *it["unreadable"]) for it in items if it["video"] is None],
    }


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding and transforms: one thread per worker process


def build_loader(
    dataset,
    batch_size: int,
    *,
    train: bool,
    workers: int = 4,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool | None = None,
    prefetch_factor: int = 2,
) -> DataLoader:
    """A DataLoader over ``dataset`` with an ``EpochSampler``; call ``loader.sampler.set_epoch(e)`` each epoch."""
    sampler = EpochSampler(len(dataset), shuffle=train, seed=seed, rank=rank, world_size=world_size, drop_last=train)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=train,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),  # never draws from the global RNG (exact resume)
    )


class SkipLog:
    """Counts the training samples replaced because they could not be read, per epoch; reports them in the log and as
    JSON lines in the run directory (``skipped.jsonl``)."""

    def __init__(self, run_dir: str | os.PathLike | None = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.intact = ""  # what a failed write of the report says is still whole; the engine keeps it current
        self.current: list[tuple[str, str]] = []

    def add(self, skipped: list[tuple[str, str]]) -> None:
        self.current.extend(skipped)

    def end_epoch(self, epoch: int) -> dict:
        """Log and write this epoch's report; returns {"epoch", "count", "files": {path: reason}}."""
        files = dict(self.current)
        report = {"epoch": epoch, "count": len(self.current), "files": files}
        if self.current:
            reasons = Counter(r.split(" (")[0] for _, r in self.current)
            log.warning("epoch %d: replaced %d unreadable samples (%s)", epoch, len(self.current), dict(reasons))
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            append_line(self.run_dir / "skipped.jsonl", json.dumps(report), self.intact)
        self.current = []
        return report

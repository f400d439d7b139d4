"""The training loop, top to bottom: lr -> batch -> autocast forward -> loss -> backward -> step -> log.

``fit`` (engine.py) builds what it needs and calls ``train_one_epoch`` once per epoch.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidapter.dist import all_reduce_sum
from vidapter.errors import VidapterError
from vidapter.evaluation import to_model_input
from vidapter.optim import CosineWarmup
from vidapter.runtime import Runtime


class TrainError(VidapterError, RuntimeError):
    """A run that must not start or cannot go on; the message says why and what to do."""


def epoch_totals() -> dict:
    """Running sums of one epoch: what its history row averages (kept in checkpoints, so a resumed epoch's row covers
    the batches before the resume too)."""
    return {"loss": 0.0, "correct": 0.0, "clips": 0, "batches": 0, "data_s": 0.0, "seconds": 0.0}


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler: CosineWarmup,
    scaler: torch.amp.GradScaler | None,
    *,
    epoch: int,
    first_batch: int,
    batches: int,
    rt: Runtime,
    accum: int,
    clip_grad: float | None,
    label_smoothing: float,
    mixup,
    on_step,
    normalize=None,
    totals: dict | None = None,
) -> dict:
    """One epoch from ``first_batch``. ``on_step(next_batch, metrics) -> bool`` runs after every optimizer step and
    returns True to stop. ``totals`` (``epoch_totals()``, updated in place) are this process's running sums of the
    epoch, from before a resume too. Returns the epoch's mean loss/top-1 over them, and timing.

    A non-finite loss in any micro-batch of an accumulated step stops the run before that step reaches the weights."""
    model.train()
    loader.sampler.set_epoch(epoch, skip=first_batch * loader.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    totals = epoch_totals() if totals is None else totals
    skipped: list[tuple[str, str]] = []
    start = tick = time.perf_counter()
    seconds_before = totals["seconds"]
    bad = None  # (batch, loss) of the first non-finite micro-batch of the step being accumulated
    stopped = False
    for b, batch in enumerate(loader, start=first_batch):
        if b >= batches:
            break
        totals["data_s"] += time.perf_counter() - tick
        skipped += batch["skipped"]
        video = to_model_input(batch["video"], rt.device, normalize)
        labels = batch["label"].to(rt.device, non_blocking=True)
        target = labels
        if mixup is not None:
            video, target = mixup(video, labels)
        stepping = (b + 1) % accum == 0
        sync = model.no_sync() if hasattr(model, "no_sync") and not stepping else contextlib.nullcontext()
        with sync:
            with rt.autocast():
                logits = model(video)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
            (scaler.scale(loss / accum) if scaler else loss / accum).backward()
        correct = (logits.argmax(-1) == labels).sum()
        loss_value, correct = torch.stack([loss.detach(), correct.float()]).tolist()  # one device sync per batch
        if bad is None and not np.isfinite(loss_value):
            bad = (b, loss_value)
        totals["loss"] += loss_value * len(labels)
        totals["correct"] += correct
        totals["clips"] += len(labels)
        totals["batches"] += 1
        if stepping:
            if all_reduce_sum([float(bad is not None)], rt.device)[0] > 0:  # any process, any micro-batch
                where, value = bad if bad is not None else (b, "on another process")
                raise TrainError(
                    f"epoch {epoch + 1} batch {where + 1}: the loss is not finite ({value}); stopping before the "
                    "step, with the last good checkpoint kept. Lower optim.lr, set optim.clip_grad, or use "
                    "train.amp=bf16"
                )
            if scaler is not None:
                scaler.unscale_(optimizer)
            if clip_grad:
                nn.utils.clip_grad_norm_(params, clip_grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            elapsed = time.perf_counter() - start
            totals["seconds"] = seconds_before + elapsed
            metrics = {
                "loss": loss_value,
                "lr": scheduler.lr,
                "clips_per_s": totals["clips"] / max(totals["seconds"], 1e-9),
                "data_wait": totals["data_s"] / max(totals["seconds"], 1e-9),
            }
            if on_step(b + 1, metrics):
                stopped = True
                break
        tick = time.perf_counter()
    totals["seconds"] = seconds_before + time.perf_counter() - start
    n = max(totals["clips"], 1)
    return {
        "loss": totals["loss"] / n,
        "top1": totals["correct"] / n,
        "clips": totals["clips"],
        "seconds": totals["seconds"],
        "data_wait": totals["data_s"] / max(totals["seconds"], 1e-9),
        "stopped": stopped,
        "skipped": skipped,
    }

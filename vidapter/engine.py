"""Training: ``fit(cfg)`` builds everything and runs the epochs; ``train_one_epoch`` is the loop, top to bottom.

Exact resume: all data randomness is a function of (seed, epoch, index) and the loader never draws from the global
RNG, so restoring weights, optimizer, scheduler, scaler, RNG states and the position in the epoch continues a run as
if it had never stopped (on CPU the final weights are bit-identical; tests/test_engine.py kills a run to check).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidapter.adapters.peft import (
    backbone_digest,
    count_parameters,
    restore_frozen_,
    store_frozen_matrices_,
    trainable_state_dict,
)
from vidapter.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vidapter.classifier import build_model, save_pretrained
from vidapter.config import Config, to_dict
from vidapter.data.build import build_dataset
from vidapter.data.loader import SkipLog, build_loader
from vidapter.data.pack import find_manifest
from vidapter.data.transforms import mixup_cutmix
from vidapter.dist import DistInfo, all_gather_objects, all_reduce_sum, barrier, cleanup, init_distributed
from vidapter.errors import VidapterError
from vidapter.evaluation import evaluate, to_model_input
from vidapter.files import write_text
from vidapter.log import RunLog, write_reports
from vidapter.models.pretrained import check_keys
from vidapter.optim import CosineWarmup, build_optimizer
from vidapter.runtime import training_runtime

log = logging.getLogger(__name__)


class TrainError(VidapterError, RuntimeError):
    """A run that must not start or cannot go on; the message says why and what to do."""


class _Stop:
    """SIGTERM sets a flag; the loop saves a checkpoint at the next optimizer step and exits cleanly."""

    def __init__(self):
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "requested", True))


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
    device: torch.device,
    amp: torch.dtype | None,
    accum: int,
    clip_grad: float | None,
    label_smoothing: float,
    mixup,
    on_step,
    normalize=None,
) -> dict:
    """One epoch from ``first_batch``. ``on_step(next_batch, metrics) -> bool`` runs after every optimizer step and
    returns True to stop. Returns this process's mean loss/top-1 over the batches it ran, and timing."""
    model.train()
    loader.sampler.set_epoch(epoch, skip=first_batch * loader.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    totals = {"loss": 0.0, "correct": 0.0, "clips": 0, "batches": 0, "data_s": 0.0}
    skipped: list[tuple[str, str]] = []
    start = tick = time.perf_counter()
    stopped = False
    for b, batch in enumerate(loader, start=first_batch):
        if b >= batches:
            break
        totals["data_s"] += time.perf_counter() - tick
        skipped += batch["skipped"]
        video = to_model_input(batch["video"], device, normalize)
        labels = batch["label"].to(device, non_blocking=True)
        target = labels
        if mixup is not None:
            video, target = mixup(video, labels)
        stepping = (b + 1) % accum == 0
        sync = model.no_sync() if hasattr(model, "no_sync") and not stepping else contextlib.nullcontext()
        with sync:
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = model(video)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
            (scaler.scale(loss / accum) if scaler else loss / accum).backward()
        correct = (logits.argmax(-1) == labels).sum()
        loss_value, correct = torch.stack([loss.detach(), correct.float()]).tolist()  # one device sync per batch
        totals["loss"] += loss_value * len(labels)
        totals["correct"] += correct
        totals["clips"] += len(labels)
        totals["batches"] += 1
        if stepping:
            if all_reduce_sum([float(not np.isfinite(loss_value))], device)[0] > 0:  # any process
                raise TrainError(
                    f"epoch {epoch + 1} batch {b + 1}: the loss is not finite ({loss_value}); stopping with the "
                    "last good checkpoint kept. Lower optim.lr, set optim.clip_grad, or use train.amp=bf16"
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
            metrics = {
                "loss": loss_value,
                "lr": scheduler.lr,
                "clips_per_s": totals["clips"] / max(elapsed, 1e-9),
                "data_wait": totals["data_s"] / max(elapsed, 1e-9),
            }
            if on_step(b + 1, metrics):
                stopped = True
                break
        tick = time.perf_counter()
    n = max(totals["clips"], 1)
    return {
        "loss": totals["loss"] / n,
        "top1": totals["correct"] / n,
        "clips": totals["clips"],
        "seconds": time.perf_counter() - start,
        "data_wait": totals["data_s"] / max(time.perf_counter() - start, 1e-9),
        "stopped": stopped,
        "skipped": skipped,
    }


def _find_resume(cfg: Config, run_dir: Path) -> Path | None:
    mode = cfg.train.resume
    if mode == "never":
        return None
    if mode == "auto":
        last = run_dir / "last.pt"
        return last if last.exists() else None
    path = Path(mode)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (train.resume)")
    return path


# Optimizer settings that shape the optimizer's state (its parameter groups) or the schedule: a resumed run keeps
# them. Checkpoints written before decay_groups and schedule existed were trained with the values given here.
_RESUME_OPTIM = {"decay_groups": "norm_bias_embed", "schedule": "step_cosine", "backbone_lr_mult": 1.0,
                 "temporal_embed_lr_mult": 1.0}  # fmt: skip


def _check_resumable(state: dict, resume: Path, cfg: Config, digest: str) -> None:
    """Refuse, naming the setting, a checkpoint whose model, backbone weights or optimizer layout differ."""
    if state["config"].get("model") != to_dict(cfg)["model"]:
        raise TrainError(f"{resume}: its model config differs from this run's; use a new train.run_dir")
    if state["backbone"].get("sha256") != digest:
        raise TrainError(
            f"{resume}: trained on other backbone weights ({str(state['backbone'].get('sha256'))[:12]}...)"
        )
    saved = state["config"].get("optim", {})
    for key, legacy in _RESUME_OPTIM.items():
        was, now = saved.get(key, legacy), getattr(cfg.optim, key)
        if was != now:
            raise TrainError(f"{resume}: written with optim.{key}={was}, this run has {now}; its optimizer state fits "
                             f"only the former: add --optim.{key}={was} (or use a new train.run_dir)")  # fmt: skip


def fit(cfg: Config, trust_pickle: bool = False) -> dict:
    """Train ``cfg`` (under torchrun: distributed). Returns {"run_dir", "history", "val", "stopped"}.

    ``trust_pickle``: read ``model.pretrained`` and ``train.resume`` files with full pickle (only for files from a
    source you trust; by default they are read with PyTorch's restricted loader, which runs no code)."""
    t = cfg.train
    rt = training_runtime(t)
    device, amp, compiled, compile_mode, frozen_dtype = rt.device, rt.amp, rt.compile, rt.compile_mode, rt.frozen_dtype
    dist_info: DistInfo = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    random.seed(t.seed)
    run_dir = Path(t.run_dir or Path("runs") / cfg.name)
    main = dist_info.is_main

    model = build_model(cfg.model, trust_pickle=trust_pickle)
    if model.load_report is None and not t.random_init:
        raise TrainError(
            "the backbone's pretrained weights are not loaded (model.pretrained is not set): training would start "
            "from random weights. Set --model.pretrained=NAME_OR_PATH, or --train.random_init=true to do it on purpose"
        )
    facts = model.backbone.facts
    dkw = dict(num_frames=cfg.model.num_frames, num_classes=cfg.model.num_classes, mean=facts.mean, std=facts.std)
    train_ds, names = build_dataset(cfg.data, "train", **dkw)
    val_ds = build_dataset(cfg.data, "val", **dkw)[0] if cfg.data.val_list else None
    names = names or [str(i) for i in range(cfg.model.num_classes)]
    lkw = dict(workers=cfg.data.workers, seed=cfg.data.seed, rank=dist_info.rank, world_size=dist_info.world_size)
    loader = build_loader(train_ds, t.batch_size, train=True, **lkw)
    val_loader = build_loader(val_ds, t.batch_size, train=False, **lkw) if val_ds is not None else None
    batches = len(loader) if t.max_steps_per_epoch is None else min(len(loader), t.max_steps_per_epoch * t.accum_steps)
    steps_per_epoch = batches // t.accum_steps
    if steps_per_epoch == 0:
        raise TrainError(
            f"{len(train_ds)} training clips make no full step of train.batch_size={t.batch_size} x "
            f"{dist_info.world_size} processes x train.accum_steps={t.accum_steps}"
        )
    batches = steps_per_epoch * t.accum_steps

    optimizer = build_optimizer(model, cfg.optim)
    scheduler = CosineWarmup(optimizer, cfg.optim, steps_per_epoch, t.epochs)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    digest = backbone_digest(model)
    start_epoch, first_batch, step, best, history = 0, 0, 0, -1.0, []
    resume = _find_resume(cfg, run_dir)
    if resume is not None:
        state = load_checkpoint(resume, trust_pickle=trust_pickle, resume=True)
        _check_resumable(state, resume, cfg, digest)
        check_keys(state["model"], trainable_state_dict(model), f"{resume} does not fit the model's trainable set")
        try:
            model.load_state_dict(state["model"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"][min(dist_info.rank, len(state["rng"]) - 1)])
            start_epoch, first_batch, step = int(state["epoch"]), int(state["batch"]), int(state["step"])
            best, history = float(state["best"]), list(state["history"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{resume}: its training state cannot be restored ({type(e).__name__}: {e})") from e
        if main:
            log.info("resumed from %s at epoch %d, batch %d (step %d)", resume, start_epoch + 1, first_batch, step)

    # after the digest and any resume: both read the frozen weights as loaded; the main process keeps the originals
    # (on the CPU) to export them unchanged
    originals = store_frozen_matrices_(model, frozen_dtype) if frozen_dtype is not None else {}
    if main and originals:
        saved = sum(o.numel() * (o.element_size() - frozen_dtype.itemsize) for o in originals.values())
        log.info("frozen matrices stored in %s (train.frozen_dtype=%s): %d tensors, %.1f MiB less on the device",
                 str(frozen_dtype).removeprefix("torch."), t.frozen_dtype, len(originals), saved / 2**20)  # fmt: skip
    originals = originals if main else {}  # only the main process exports
    model.to(device)
    mode = None if compile_mode == "default" else compile_mode
    # validation calls compiled_model too: eval mode compiles its own graph once, then runs as compiled inference
    compiled_model = torch.compile(model, mode=mode) if compiled else model
    train_model = compiled_model
    if dist_info.world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(compiled_model, device_ids=ids)
    runlog = RunLog(run_dir, enabled=main)
    skiplog = SkipLog(run_dir if main else None)
    # what a failed write (a full disk) leaves whole: the last checkpoint written, and how to go on from it
    last_good = {"at": (start_epoch, first_batch, step), "path": resume} if resume is not None else {"at": None}

    def intact() -> str:
        if last_good["at"] is None:
            return "no checkpoint of this run is written yet; free space and run the same command again"
        e, b, s = last_good["at"]
        return (f"{last_good['path']} is complete (epoch {e + 1}, batch {b}, step {s}); free space and run the same "
                "command to resume from it")  # fmt: skip

    if main:
        write_text(run_dir / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n", intact())
        write_text(run_dir / "classes.txt", "\n".join(names) + "\n", intact())
        packed = find_manifest(cfg.data.root, Path(cfg.data.train_list).parent)
        if packed is not None:  # the storage the run trained from (layout, encoder, list hashes), beside its config
            write_text(run_dir / "data_pack.json", packed.read_text(), intact())
            info = json.loads(packed.read_text())
            log.info("data: packed as %s at short side %s (%s)", info.get("layout"), info.get("short_side"), packed)
        counts = count_parameters(model)
        log.info("%s: %s (%s); %d of %d parameters train; %d clips, %d steps per epoch, %d process(es)", cfg.name,
                 cfg.model.backbone, model.load_report or "random init", counts["trainable"], counts["total"],
                 len(train_ds), steps_per_epoch, dist_info.world_size)  # fmt: skip
        if compiled:
            log.info("torch.compile: on (train.compile=%s, mode %s); the first step compiles, then runs faster",
                     t.compile, compile_mode)  # fmt: skip
    stop = _Stop()
    stop.install()
    fault_step = int(os.environ.get("VIDAPTER_FAULT_KILL_AT_STEP", "0"))  # crash-safety tests only

    def checkpoint(epoch: int, batch: int, name: str = "last.pt") -> None:
        rngs = all_gather_objects(rng_state())
        if main:
            state = {
                "model": {k: v.cpu() for k, v in trainable_state_dict(model).items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rngs,
                "epoch": epoch,
                "batch": batch,
                "step": step,
                "best": best,
                "history": history,
                "config": to_dict(cfg),
                "backbone": {"name": cfg.model.backbone, "pretrained": cfg.model.pretrained, "sha256": digest},
            }
            save_checkpoint(state, run_dir / name, intact())
            if name == "last.pt":
                last_good.update(at=(epoch, batch, step), path=run_dir / name)
                runlog.intact = skiplog.intact = intact()
        barrier()

    val_metrics = None
    mixup = _mixup(cfg)
    for epoch in range(start_epoch, t.epochs):

        def on_step(next_batch: int, metrics: dict, epoch=epoch) -> bool:
            nonlocal step
            step += 1
            if main and step % t.log_every == 0:
                runlog.record("train", step, epoch=epoch, **metrics)
            if main:
                runlog.progress(epoch, t.epochs, next_batch - 1, batches, loss=metrics["loss"], lr=metrics["lr"],
                                clips_s=metrics["clips_per_s"])  # fmt: skip
            stopping = all_reduce_sum([float(stop.requested)], device)[0] > 0
            if stopping or step % t.ckpt_every == 0:
                checkpoint(epoch, next_batch)
            if fault_step and step == fault_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return stopping

        stats = train_one_epoch(
            train_model, loader, optimizer, scheduler, scaler, epoch=epoch, first_batch=first_batch, batches=batches,
            device=device, amp=amp, accum=t.accum_steps, clip_grad=cfg.optim.clip_grad,
            label_smoothing=cfg.optim.label_smoothing, mixup=mixup, on_step=on_step, normalize=train_ds.normalize,
        )  # fmt: skip
        first_batch = 0
        if stats["stopped"]:
            if main:
                log.info("SIGTERM: checkpoint written to %s; resume with the same command", run_dir / "last.pt")
            runlog.close()
            cleanup()
            return {"run_dir": str(run_dir), "history": history, "val": val_metrics, "stopped": True}
        for part in all_gather_objects(stats["skipped"]):
            if main:
                skiplog.add(part)
        row = {
            "epoch": epoch,
            "train_loss": stats["loss"],
            "train_top1": stats["top1"],
            "seconds": stats["seconds"],
            "clips_per_s": stats["clips"] / max(stats["seconds"], 1e-9),
            "data_wait": stats["data_wait"],
        }
        if val_loader is not None and ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
            val_metrics = evaluate(compiled_model, val_loader, device=device, num_classes=cfg.model.num_classes,
                                   amp=amp, normalize=val_ds.normalize)  # fmt: skip
            row.update(val_loss=val_metrics["loss"], val_top1=val_metrics["top1"], val_top5=val_metrics["top5"],
                       val_mean_class_acc=val_metrics["mean_class_acc"])  # fmt: skip
            if main:
                skiplog.add(val_metrics["skipped"])
        row["skipped"] = skiplog.end_epoch(epoch)["count"] if main else 0
        history.append(row)
        if main:
            runlog.record("epoch", step, **row)
            log.info("epoch %d/%d: %s", epoch + 1, t.epochs,
                     ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch"))  # fmt: skip
        improved = val_metrics is not None and "val_top1" in row and row["val_top1"] > best
        if improved:
            best = row["val_top1"]
        checkpoint(epoch + 1, 0)
        if improved:
            checkpoint(epoch + 1, 0, "best.pt")
    if main:
        restore_frozen_(model, originals)
        last, model_dir = run_dir / "last.pt", run_dir / "model"
        save_pretrained(model, cfg, model_dir, names, intact=f"{last} holds the finished run; free space and run "
                        f"`vidapter export {last} --model-dir {model_dir}`")  # fmt: skip
        confusion = val_metrics["confusion"] if val_metrics is not None else None
        write_reports(run_dir, history, confusion, names, intact=f"the run is complete: {model_dir} and {last} are "
                      "whole; only the reports are missing")  # fmt: skip
        log.info("done: %s (model directory: %s)", run_dir, model_dir)
    runlog.close()
    cleanup()
    return {"run_dir": str(run_dir), "history": history, "val": val_metrics, "stopped": False}


def _mixup(cfg: Config):
    o = cfg.optim
    return mixup_cutmix(cfg.model.num_classes, o.mixup, o.cutmix) if (o.mixup or o.cutmix) else None

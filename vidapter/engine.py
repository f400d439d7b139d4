"""Training: ``fit(cfg)`` is a short sequence of named stages (runtime, build, resume, place, epochs, finish) inside
``try/finally``; ``train_one_epoch`` is the loop, top to bottom.

Exact resume: all data randomness is a function of (seed, epoch, index) and the loader never draws from the global
RNG, so restoring weights, optimizer, scheduler, scaler, RNG states and the position in the epoch continues a run as
if it had never stopped (on CPU the final weights are bit-identical; tests/test_engine.py kills a run to check).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
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
from vidapter.config import Config, from_dict, resume_differences, to_dict
from vidapter.data.build import build_dataset
from vidapter.data.datasets import read_class_names
from vidapter.data.loader import SkipLog, build_loader
from vidapter.data.pack import find_manifest
from vidapter.data.transforms import mixup_cutmix
from vidapter.dist import DistInfo, all_gather_objects, all_reduce_sum, barrier, cleanup, init_distributed
from vidapter.errors import ConfigError
from vidapter.evaluation import evaluate
from vidapter.files import write_text
from vidapter.log import RunLog, write_reports
from vidapter.loop import TrainError, epoch_totals, train_one_epoch
from vidapter.models.pretrained import check_keys
from vidapter.optim import CosineWarmup, build_optimizer
from vidapter.runtime import Runtime, training_runtime

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a run stands: what a checkpoint records and a resume restores."""

    epoch: int = 0  # the epoch under way (0-based)
    batch: int = 0  # its next batch
    step: int = 0  # optimizer steps taken
    best: float = -1.0  # best validation top-1
    history: list = field(default_factory=list)  # one row per finished epoch
    totals: dict = field(default_factory=epoch_totals)  # the epoch under way, so far
    last_good: tuple | None = None  # (path, epoch, batch, step) of the last complete last.pt

    def intact(self) -> str:
        """What a failed write (a full disk) leaves whole, and how to go on from it."""
        if self.last_good is None:
            return "no checkpoint of this run is written yet; free space and run the same command again"
        path, e, b, s = self.last_good
        return f"{path} is complete (epoch {e + 1}, batch {b}, step {s}); free space and run the same command to " \
               "resume from it"  # fmt: skip


@dataclass
class Training:
    """What ``fit`` builds: the model and what trains it, the data, where the run is written."""

    cfg: Config
    rt: Runtime
    dist: DistInfo
    run_dir: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: CosineWarmup
    scaler: torch.amp.GradScaler | None
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    names: list[str]
    batches: int  # per epoch, a whole number of optimizer steps
    steps_per_epoch: int
    digest: str
    train_model: nn.Module | None = None  # placed: compiled and, under torchrun, in DDP
    eval_model: nn.Module | None = None  # placed: compiled, without DDP
    originals: dict = field(default_factory=dict)  # frozen matrices as loaded, to export unchanged
    runlog: RunLog | None = None
    skiplog: SkipLog | None = None

    @property
    def main(self) -> bool:
        return self.dist.is_main


class _Stop:
    """SIGTERM sets a flag; the loop saves a checkpoint at the next optimizer step and exits cleanly. The handler is
    installed for the run only and only from the main thread (Python delivers signals there); ``restore`` puts the
    previous one back."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.info("fit runs outside the main thread: SIGTERM is not caught (stop with a checkpoint not offered)")
            return
        self.previous = signal.signal(signal.SIGTERM, lambda *_: setattr(self, "requested", True))

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None


def fit(cfg: Config, trust_pickle: bool = False, *, after_step: Callable[[Progress], None] | None = None) -> dict:
    """Train ``cfg`` (under torchrun: distributed). Returns {"run_dir", "history", "val", "stopped"}.

    ``trust_pickle``: read ``model.pretrained`` and ``train.resume`` files with full pickle (only for files from a
    source you trust; by default they are read with PyTorch's restricted loader, which runs no code).
    ``after_step(progress)`` runs after every optimizer step and its checkpoint, on every process (a progress hook;
    the crash-safety tests kill the process from it)."""
    rt, dist_info, owns_group = setup_runtime(cfg)
    stop = _Stop()
    tr = None
    try:
        stop.install()
        tr = build(cfg, rt, dist_info, trust_pickle)
        progress = resume(tr, trust_pickle)
        place(tr)
        open_run(tr, progress)
        stopped, val = run_epochs(tr, progress, stop, after_step)
        if not stopped:
            finish(tr, progress, val)
        return {"run_dir": str(tr.run_dir), "history": progress.history, "val": val, "stopped": stopped}
    finally:
        stop.restore()
        if tr is not None and tr.runlog is not None:
            tr.runlog.close()
        if owns_group:
            cleanup()


def setup_runtime(cfg: Config) -> tuple[Runtime, DistInfo, bool]:
    """Device, AMP, compile and frozen-dtype decisions; the process group (torchrun); seeds. Returns whether this call
    created the process group (fit then destroys it)."""
    rt = training_runtime(cfg.train)
    had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
    dist_info = init_distributed(rt.device)
    if rt.device.type == "cuda":
        rt = Runtime(torch.device("cuda", dist_info.local_rank), rt.amp, rt.frozen_dtype, rt.compile, rt.compile_mode)
        torch.cuda.set_device(rt.device)
    seed = cfg.train.seed
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    owns = not had_group and torch.distributed.is_available() and torch.distributed.is_initialized()
    return rt, dist_info, owns


def build(cfg: Config, rt: Runtime, dist_info: DistInfo, trust_pickle: bool) -> Training:
    """The model (weights loaded, adapters in place), the data and loaders, the optimizer, schedule and scaler."""
    t = cfg.train
    text_names = read_class_names(cfg.data.class_names) if cfg.data.class_names else None  # for a text head
    model = build_model(cfg.model, trust_pickle=trust_pickle, class_names=text_names)
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
    optimizer = build_optimizer(model, cfg.optim)
    return Training(
        cfg=cfg, rt=rt, dist=dist_info, run_dir=Path(t.run_dir or Path("runs") / cfg.name), model=model,
        optimizer=optimizer, scheduler=CosineWarmup(optimizer, cfg.optim, steps_per_epoch, t.epochs),
        scaler=torch.amp.GradScaler("cuda") if rt.amp == torch.float16 else None, loader=loader,
        val_loader=val_loader, names=names, batches=steps_per_epoch * t.accum_steps, steps_per_epoch=steps_per_epoch,
        digest=backbone_digest(model),
    )  # fmt: skip


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


def resume(tr: Training, trust_pickle: bool) -> Progress:
    """Restore the trainable weights, optimizer, schedule, scaler, RNG and position from ``train.resume`` (auto: the
    run directory's last.pt); a fresh ``Progress`` when there is none. A checkpoint of another model, other backbone
    weights or another optimizer layout is refused naming the setting; settings that shape neither may change."""
    path = _find_resume(tr.cfg, tr.run_dir)
    if path is None:
        return Progress()
    state = load_checkpoint(path, trust_pickle=trust_pickle, resume=True)
    try:
        saved = from_dict(state["config"], where=f"{path}: config")
    except ConfigError as e:
        raise CheckpointError(f"{path}: its config is not valid ({e})") from e
    conflicts, changes = resume_differences(saved, tr.cfg)
    if conflicts:
        name, was, now = conflicts[0]
        raise TrainError(f"{path}: written with {name}={was}, this run has {now}; the checkpoint fits only the former: "
                         f"add --{name}={_as_override(was)} (or use a new train.run_dir)")  # fmt: skip
    if state["backbone"].get("sha256") != tr.digest:
        raise TrainError(f"{path}: trained on other backbone weights ({str(state['backbone'].get('sha256'))[:12]}...)")
    check_keys(state["model"], trainable_state_dict(tr.model), f"{path} does not fit the model's trainable set")
    try:
        tr.model.load_state_dict(state["model"], strict=False)
        tr.optimizer.load_state_dict(state["optimizer"])
        tr.scheduler.load_state_dict(state["scheduler"])
        if tr.scaler is not None and state.get("scaler"):
            tr.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][min(tr.dist.rank, len(state["rng"]) - 1)])
        progress = Progress(int(state["epoch"]), int(state["batch"]), int(state["step"]), float(state["best"]),
                            list(state["history"]))  # fmt: skip
        # checkpoints before version 3 kept no running sums: the resumed epoch's row then covers the batches after
        progress.totals = {**epoch_totals(), **state.get("epoch_totals", {})}
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: its training state cannot be restored ({type(e).__name__}: {e})") from e
    progress.last_good = (path, progress.epoch, progress.batch, progress.step)
    if tr.main:
        log.info("resumed from %s at epoch %d, batch %d (step %d)", path, progress.epoch + 1, progress.batch,
                 progress.step)  # fmt: skip
        if changes:
            log.info("resuming with changed settings: %s", "; ".join(changes))
    return progress


def _as_override(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else "none" if value is None else str(value).lower() \
        if isinstance(value, bool) else str(value)  # fmt: skip


def place(tr: Training) -> None:
    """Frozen matrices in their storage dtype, the model on its device, compiled, and under torchrun in DDP."""
    rt = tr.rt
    # after the digest and any resume: both read the frozen weights as loaded; the main process keeps the originals
    # (on the CPU) to export them unchanged
    originals = store_frozen_matrices_(tr.model, rt.frozen_dtype) if rt.frozen_dtype is not None else {}
    if tr.main and originals:
        saved = sum(o.numel() * (o.element_size() - rt.frozen_dtype.itemsize) for o in originals.values())
        log.info("frozen matrices stored in %s (train.frozen_dtype=%s): %d tensors, %.1f MiB less on the device",
                 str(rt.frozen_dtype).removeprefix("torch."), tr.cfg.train.frozen_dtype, len(originals),
                 saved / 2**20)  # fmt: skip
    tr.originals = originals if tr.main else {}  # only the main process exports
    tr.model.to(rt.device)
    # validation runs the compiled model too: eval mode compiles its own graph once, then runs as compiled inference
    tr.eval_model = tr.train_model = rt.compiled(tr.model)
    if tr.dist.world_size > 1:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        tr.train_model = nn.parallel.DistributedDataParallel(tr.eval_model, device_ids=ids)


def open_run(tr: Training, progress: Progress) -> None:
    """The run directory: its config, class names and storage manifest, the metrics and skip logs; the run's
    summary in the log."""
    cfg, main = tr.cfg, tr.main
    tr.runlog = RunLog(tr.run_dir, enabled=main)
    tr.skiplog = SkipLog(tr.run_dir if main else None)
    tr.runlog.intact = tr.skiplog.intact = progress.intact()
    if not main:
        return
    write_text(tr.run_dir / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n", progress.intact())
    write_text(tr.run_dir / "classes.txt", "\n".join(tr.names) + "\n", progress.intact())
    packed = find_manifest(cfg.data.root, Path(cfg.data.train_list).parent)
    if packed is not None:  # the storage the run trained from (layout, encoder, list hashes), beside its config
        write_text(tr.run_dir / "data_pack.json", packed.read_text(), progress.intact())
        info = json.loads(packed.read_text())
        log.info("data: packed as %s at short side %s (%s)", info.get("layout"), info.get("short_side"), packed)
    counts = count_parameters(tr.model)
    log.info("%s: %s (%s); %d of %d parameters train; %d clips, %d steps per epoch, %d process(es)", cfg.name,
             cfg.model.backbone, tr.model.load_report or "random init", counts["trainable"], counts["total"],
             len(tr.loader.dataset), tr.steps_per_epoch, tr.dist.world_size)  # fmt: skip
    if tr.rt.compile:
        log.info("torch.compile: on (train.compile=%s, mode %s); the first step compiles, then runs faster",
                 cfg.train.compile, tr.rt.compile_mode)  # fmt: skip


def save_state(tr: Training, progress: Progress, name: str = "last.pt") -> None:
    """Write the training state at ``progress`` (every process takes part: the RNG states are gathered)."""
    rngs = all_gather_objects(rng_state())
    if tr.main:
        state = {
            "model": {k: v.cpu() for k, v in trainable_state_dict(tr.model).items()},
            "optimizer": tr.optimizer.state_dict(),
            "scheduler": tr.scheduler.state_dict(),
            "scaler": tr.scaler.state_dict() if tr.scaler is not None else None,
            "rng": rngs,
            "epoch": progress.epoch,
            "batch": progress.batch,
            "step": progress.step,
            "best": progress.best,
            "history": progress.history,
            "epoch_totals": dict(progress.totals),
            "config": to_dict(tr.cfg),
            "backbone": {"name": tr.cfg.model.backbone, "pretrained": tr.cfg.model.pretrained, "sha256": tr.digest},
        }
        save_checkpoint(state, tr.run_dir / name, progress.intact())
        if name == "last.pt":
            progress.last_good = (tr.run_dir / name, progress.epoch, progress.batch, progress.step)
            tr.runlog.intact = tr.skiplog.intact = progress.intact()
    barrier()


def run_epochs(tr: Training, progress: Progress, stop: _Stop, after_step) -> tuple[bool, dict | None]:
    """Train, validate and checkpoint each epoch from where ``progress`` stands. Returns (stopped by SIGTERM, the
    last validation metrics)."""
    cfg, t, main = tr.cfg, tr.cfg.train, tr.main
    val = None
    mixup = _mixup(cfg)
    while progress.epoch < t.epochs:
        epoch = progress.epoch

        def on_step(next_batch: int, metrics: dict, epoch=epoch) -> bool:
            progress.step += 1
            progress.batch = next_batch
            if main and progress.step % t.log_every == 0:
                tr.runlog.record("train", progress.step, epoch=epoch, **metrics)
            if main:
                tr.runlog.progress(epoch, t.epochs, next_batch - 1, tr.batches, loss=metrics["loss"], lr=metrics["lr"],
                                   clips_s=metrics["clips_per_s"])  # fmt: skip
            stopping = all_reduce_sum([float(stop.requested)], tr.rt.device)[0] > 0
            if stopping or progress.step % t.ckpt_every == 0:
                save_state(tr, progress)
            if after_step is not None:
                after_step(progress)
            return stopping

        stats = train_one_epoch(
            tr.train_model, tr.loader, tr.optimizer, tr.scheduler, tr.scaler, epoch=epoch, first_batch=progress.batch,
            batches=tr.batches, rt=tr.rt, accum=t.accum_steps, clip_grad=cfg.optim.clip_grad,
            label_smoothing=cfg.optim.label_smoothing, mixup=mixup, on_step=on_step,
            normalize=tr.loader.dataset.normalize, totals=progress.totals,
        )  # fmt: skip
        if stats["stopped"]:
            if main:
                log.info("SIGTERM: checkpoint written to %s; resume with the same command", tr.run_dir / "last.pt")
            return True, val
        for part in all_gather_objects(stats["skipped"]):
            if main:
                tr.skiplog.add(part)
        row = {
            "epoch": epoch,
            "train_loss": stats["loss"],
            "train_top1": stats["top1"],
            "seconds": stats["seconds"],
            "clips_per_s": stats["clips"] / max(stats["seconds"], 1e-9),
            "data_wait": stats["data_wait"],
        }
        if tr.val_loader is not None and ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
            val = validate(tr)
            row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"],
                       val_mean_class_acc=val["mean_class_acc"], val_videos=val["videos"])  # fmt: skip
        row["skipped"] = tr.skiplog.end_epoch(epoch)["count"] if main else 0
        progress.history.append(row)
        if main:
            tr.runlog.record("epoch", progress.step, **row)
            log.info("epoch %d/%d: %s", epoch + 1, t.epochs,
                     ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch"))  # fmt: skip
        improved = val is not None and "val_top1" in row and row["val_top1"] > progress.best
        if improved:
            progress.best = row["val_top1"]
        progress.epoch, progress.batch, progress.totals = epoch + 1, 0, epoch_totals()
        save_state(tr, progress)
        if improved:
            save_state(tr, progress, "best.pt")
    return False, val


def validate(tr: Training) -> dict:
    """Validation metrics (1 view per video); unreadable videos are left out and named in the skip log."""
    val = evaluate(tr.eval_model, tr.val_loader, device=tr.rt.device, num_classes=tr.cfg.model.num_classes,
                   amp=tr.rt.amp, normalize=tr.val_loader.dataset.normalize)  # fmt: skip
    if tr.main:
        tr.skiplog.add(val["skipped"])
        if val["excluded"]:
            log.warning("validation: evaluated %d of %d videos; left out: %s", val["read"], val["total"],
                        ", ".join(e["path"] for e in val["excluded"]))  # fmt: skip
    return val


def finish(tr: Training, progress: Progress, val: dict | None) -> None:
    """The model directory (with the frozen weights as loaded) and the reports, from the main process."""
    if not tr.main:
        return
    restore_frozen_(tr.model, tr.originals)
    last, model_dir = tr.run_dir / "last.pt", tr.run_dir / "model"
    save_pretrained(tr.model, tr.cfg, model_dir, tr.names, intact=f"{last} holds the finished run; free space and run "
                    f"`vidapter export {last} --model-dir {model_dir}`")  # fmt: skip
    confusion = val["confusion"] if val is not None else None
    write_reports(tr.run_dir, progress.history, confusion, tr.names, intact=f"the run is complete: {model_dir} and "
                  f"{last} are whole; only the reports are missing")  # fmt: skip
    log.info("done: %s (model directory: %s)", tr.run_dir, model_dir)


def _mixup(cfg: Config):
    o = cfg.optim
    return mixup_cutmix(cfg.model.num_classes, o.mixup, o.cutmix) if (o.mixup or o.cutmix) else None

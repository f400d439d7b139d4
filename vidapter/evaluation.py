"""Multi-view evaluation: softmax per view, mean over views per video; top-1, top-5, mean class accuracy.

Views are clips x crops folded into one axis (crops fastest). The single-view figure uses the centre view (middle
clip, middle crop), so single- and multi-view are reported together under one view protocol.
"""

from __future__ import annotations

import numpy as np
import torch

from vidapter.dist import all_gather_objects
from vidapter.errors import ConfigError, VidapterError


def centre_view(clips: int, crops: int) -> int:
    return (clips // 2) * crops + crops // 2


def accuracy_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int, missed: np.ndarray | None = None) -> dict:
    """top1 / top5 / mean class accuracy of (N, K) probabilities, and the (K, K) confusion matrix. ``missed`` (N,
    bool): rows counted as wrong whatever their probabilities say (videos that could not be read, under
    ``unreadable="wrong"``); they count in every denominator and in no confusion cell."""
    missed = np.zeros(len(labels), dtype=bool) if missed is None else missed
    order = np.argsort(-probs, axis=1)
    top1 = (order[:, 0] == labels) & ~missed
    top5 = (order[:, : min(5, num_classes)] == labels[:, None]).any(1) & ~missed
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels[~missed], order[~missed, 0]), 1)
    per_label = np.bincount(labels, minlength=num_classes)
    present = per_label > 0
    per_class = confusion.diagonal()[present] / per_label[present]
    return {
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "mean_class_acc": float(per_class.mean()),
        "confusion": confusion,
    }


def to_model_input(video: torch.Tensor, device: torch.device, normalize=None) -> torch.Tensor:
    """A loader's batch on ``device``: uint8 clips move as uint8 and are normalised there."""
    video = video.to(device, non_blocking=True)
    if video.dtype == torch.uint8:
        if normalize is None:
            raise ValueError("the loader delivers uint8 clips but no normalisation was given (dataset.normalize)")
        video = normalize(video)
    return video


UNREADABLE = ("exclude", "wrong")


class EvaluationError(VidapterError):
    """An evaluation that has nothing to report (no video could be read)."""


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    *,
    device: torch.device,
    num_classes: int,
    clips: int = 1,
    crops: int = 1,
    amp: torch.dtype | None = None,
    max_batches: int | None = None,
    normalize=None,
    unreadable: str = "exclude",
) -> dict:
    """Metrics over the loader's videos (gathered across processes, de-duplicated by index). Batches carry video
    (B, V, C, T, H, W) with V = clips * crops; a uint8 batch is normalised by ``normalize`` (the dataset's) on
    ``device``.

    A video that cannot be read (the loader's ``unreadable`` entries) is never replaced by another: ``unreadable``
    ``exclude`` leaves it out (``videos`` of ``total`` are evaluated), ``wrong`` counts it as a miss in top-1, top-5
    and mean class accuracy (``videos`` = ``total``, the protocol's denominator); either way ``excluded`` lists the
    files with their reasons. The loss is over the videos read."""
    if unreadable not in UNREADABLE:
        raise ConfigError(f"unreadable must be one of {', '.join(UNREADABLE)}, got {unreadable!r}")
    model.eval()
    rows, failed, skipped = {}, {}, []
    autocast = torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)
    for b, batch in enumerate(loader):
        if max_batches is not None and b >= max_batches:
            break
        skipped += batch["skipped"]
        for idx, label, path, reason in batch.get("unreadable", ()):
            failed[idx] = (label, path, reason)
        if batch["video"] is None:
            continue
        video = to_model_input(batch["video"], device, normalize)
        bsz, views = video.shape[:2]
        if views != clips * crops:
            raise ValueError(f"batch has {views} views per video, the protocol says {clips} clips x {crops} crops")
        with autocast:
            logits = model(video.flatten(0, 1)).float().view(bsz, views, -1)
        probs = logits.softmax(-1).cpu()
        for i, idx in enumerate(batch["index"].tolist()):
            rows[idx] = (int(batch["label"][i]), probs[i].numpy())
    merged, all_failed, all_skipped = {}, {}, []
    for part_rows, part_failed, part_skipped in all_gather_objects((rows, failed, skipped)):
        merged.update(part_rows)  # DistributedSampler pads with repeats: the index de-duplicates
        all_failed.update(part_failed)
        all_skipped += part_skipped
    total = len(merged) + len(all_failed)
    if not merged:
        first = next(iter(all_failed.values()), None)
        raise EvaluationError(f"evaluation read none of its {total} videos"
                              + (f" (first: {first[1]}: {first[2]})" if first else ""))  # fmt: skip
    order = sorted(merged)
    labels = np.array([merged[i][0] for i in order])
    per_view = np.stack([merged[i][1] for i in order])  # (N, V, K)
    mean_probs = per_view.mean(1)
    n = len(order)
    loss = float(-np.log(np.maximum(mean_probs[np.arange(n), labels], 1e-12)).mean())  # NLL of the view mean
    centre = per_view[:, centre_view(clips, crops)]
    missed = None
    if unreadable == "wrong" and all_failed:
        lost = sorted(all_failed)
        labels = np.concatenate([labels, [all_failed[i][0] for i in lost]])
        missed = np.arange(len(labels)) >= n
        blank = np.zeros((len(lost), mean_probs.shape[1]))
        mean_probs, centre = np.concatenate([mean_probs, blank]), np.concatenate([centre, blank])
    multi = accuracy_metrics(mean_probs, labels, num_classes, missed)
    single = accuracy_metrics(centre, labels, num_classes, missed)
    return {
        "videos": len(labels),
        "total": total,
        "read": n,
        "unreadable": unreadable,
        "excluded": [{"path": path, "reason": reason} for _, (_, path, reason) in sorted(all_failed.items())],
        "views": f"{clips} clips x {crops} crops",
        "top1": multi["top1"],
        "top5": multi["top5"],
        "mean_class_acc": multi["mean_class_acc"],
        "single_view_top1": single["top1"],
        "single_view_top5": single["top5"],
        "loss": loss,
        "confusion": multi["confusion"],
        "skipped": all_skipped,
    }


def coverage(metrics: dict) -> str:
    """ "evaluated N of M videos" and what became of the rest, in one line."""
    lost = metrics["total"] - metrics["read"]
    if not lost:
        return f"evaluated {metrics['read']} of {metrics['total']} videos"
    how = "left out" if metrics["unreadable"] == "exclude" else "counted as misses"
    return f"evaluated {metrics['read']} of {metrics['total']} videos ({lost} unreadable, {how})"

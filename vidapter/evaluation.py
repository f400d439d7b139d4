"""Multi-view evaluation: softmax per view, mean over views per video; top-1, top-5, mean class accuracy.

Views are clips x crops folded into one axis (crops fastest). The single-view figure uses the centre view (middle
clip, middle crop), so single- and multi-view are reported together under one view protocol.
"""

from __future__ import annotations

import numpy as np
import torch

from vidapter.dist import all_gather_objects


def centre_view(clips: int, crops: int) -> int:
    return (clips // 2) * crops + crops // 2


def accuracy_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """top1 / top5 / mean class accuracy of (N, K) probabilities, and the (K, K) confusion matrix."""
    order = np.argsort(-probs, axis=1)
    top1 = order[:, 0] == labels
    top5 = (order[:, : min(5, num_classes)] == labels[:, None]).any(1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, order[:, 0]), 1)
    present = confusion.sum(1) > 0
    per_class = confusion.diagonal()[present] / confusion.sum(1)[present]
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
) -> dict:
    """Metrics over the loader's videos (gathered across processes, de-duplicated by index). Batches carry video
    (B, V, C, T, H, W) with V = clips * crops; a uint8 batch is normalised by ``normalize`` (the dataset's) on
    ``device``."""
    model.eval()
    rows, skipped = {}, []
    for b, batch in enumerate(loader):
        if max_batches is not None and b >= max_batches:
            break
        video = to_model_input(batch["video"], device, normalize)
        bsz, views = video.shape[:2]
        if views != clips * crops:
            raise ValueError(f"batch has {views} views per video, the protocol says {clips} clips x {crops} crops")
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(video.flatten(0, 1)).float().view(bsz, views, -1)
        probs = logits.softmax(-1).cpu()
        for i, idx in enumerate(batch["index"].tolist()):
            rows[idx] = (int(batch["label"][i]), probs[i].numpy())
        skipped += batch["skipped"]
    merged, all_skipped = {}, []
    for part_rows, part_skipped in all_gather_objects((rows, skipped)):
        merged.update(part_rows)  # DistributedSampler pads with repeats: the index de-duplicates
        all_skipped += part_skipped
    n = len(merged)
    if n == 0:
        raise ValueError("evaluation saw no videos")
    order = sorted(merged)
    labels = np.array([merged[i][0] for i in order])
    per_view = np.stack([merged[i][1] for i in order])  # (N, V, K)
    mean_probs = per_view.mean(1)
    multi = accuracy_metrics(mean_probs, labels, num_classes)
    single = accuracy_metrics(per_view[:, centre_view(clips, crops)], labels, num_classes)
    return {
        "videos": n,
        "views": f"{clips} clips x {crops} crops",
        "top1": multi["top1"],
        "top5": multi["top5"],
        "mean_class_acc": multi["mean_class_acc"],
        "single_view_top1": single["top1"],
        "single_view_top5": single["top5"],
        "loss": float(-np.log(np.maximum(mean_probs[np.arange(n), labels], 1e-12)).mean()),  # NLL of view-mean
        "confusion": multi["confusion"],
        "skipped": all_skipped,
    }

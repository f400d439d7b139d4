"""Pretrain the demo image ViT on synthetic images (multi-task: kind, shape, position, size, opacity, angle, hue).

    python -m vidapter.demo.pretrain --out vidapter/demo/demo_vit.safetensors

reproduces the checkpoint shipped in the package (timm parameter names; loads through the same path as CLIP,
``pretrained="vidapter:demo-vit"``) and writes its image accuracy per task next to it as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from vidapter.demo.images import TASKS, make_images
from vidapter.models.vit import VisionTransformer, build_vit


class MultiTaskImageModel(nn.Module):
    """The image ViT and one linear head per task on its final-normed class token."""

    def __init__(self, vit: VisionTransformer):
        super().__init__()
        self.vit = vit
        self.heads = nn.ModuleDict({k: nn.Linear(vit.width, n) for k, n in TASKS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.vit(x)
        return {k: h(z) for k, h in self.heads.items()}


def _normalise(imgs: np.ndarray, facts) -> torch.Tensor:
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    mean, std = torch.tensor(facts.mean).view(1, 3, 1, 1), torch.tensor(facts.std).view(1, 3, 1, 1)
    return (x - mean) / std


def _loss_and_correct(out: dict, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[int, int]]]:
    loss, stats = 0.0, {}
    for j, k in enumerate(TASKS):
        valid = y[:, j] >= 0
        if valid.any():
            loss = loss + F.cross_entropy(out[k][valid], y[valid, j])
            stats[k] = (int((out[k][valid].argmax(-1) == y[valid, j]).sum()), int(valid.sum()))
    return loss, stats


def pretrain(backbone: str = "demo_vit", n_train: int = 20000, n_test: int = 2000, epochs: int = 8,
             batch: int = 128, lr: float = 2e-3, seed: int = 0) -> tuple[VisionTransformer, dict]:  # fmt: skip
    torch.manual_seed(seed)
    vit = build_vit(backbone)
    model = MultiTaskImageModel(vit)
    size = vit.image_size
    xtr, ytr = make_images(n_train, seed, size)
    xte, yte = make_images(n_test, seed + 1, size)
    xtr, xte = _normalise(xtr, vit.facts), _normalise(xte, vit.facts)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * (n_train // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n_train)
        for i in range(n_train // batch):
            idx = perm[i * batch : (i + 1) * batch]
            loss, _ = _loss_and_correct(model(xtr[idx]), ytr[idx])  # no flips: left/right is a target
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f} ({time.time() - start:.0f}s)", flush=True)
    model.eval()
    totals: dict[str, list[int]] = {k: [0, 0] for k in TASKS}
    with torch.no_grad():
        for i in range(0, n_test, 500):
            _, stats = _loss_and_correct(model(xte[i : i + 500]), yte[i : i + 500])
            for k, (c, n) in stats.items():
                totals[k][0] += c
                totals[k][1] += n
    acc = {k: c / n for k, (c, n) in totals.items() if n}
    report = {"backbone": backbone, "train_images": n_train, "test_images": n_test, "epochs": epochs,
              "seconds": round(time.time() - start, 1), "test_accuracy": acc,
              "chance": {k: 1 / n for k, n in TASKS.items()}, "seed": seed}  # fmt: skip
    return vit, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).with_name("demo_vit.safetensors")))
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    vit, report = pretrain(n_train=args.images, epochs=args.epochs, seed=args.seed)
    out = Path(args.out)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["test_accuracy"], indent=2))


if __name__ == "__main__":
    main()

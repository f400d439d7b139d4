"""``vidapter demo``: adapt the shipped image ViT to synthetic videos with AIM; ``--ablation``: Table 1 in miniature;
``--methods``: every method on the same data, steps and evaluation.

The synthetic dataset (docs/synthetic.md) has order classes in time-reversed pairs and appearance classes. The
headline number is the *pair accuracy*: for videos of an order class, how often the model prefers the right member
of its pair over the reversed one (C[a,a] / (C[a,a] + C[a,b]) from the confusion matrix; chance 50 %). A model
that pools frames without temporal modelling cannot beat chance there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidapter.adapters.peft import count_parameters
from vidapter.classifier import ABLATION_ROWS, load_model, predict_file
from vidapter.config import Config, apply_overrides
from vidapter.data.build import build_dataset, test_views
from vidapter.data.datasets import read_class_names
from vidapter.data.loader import build_loader
from vidapter.data.synthetic import APPEARANCE, CLASSES, ORDER_PAIRS, RELATION_FAMILIES, VERSION, make_synthetic
from vidapter.engine import fit
from vidapter.evaluation import evaluate
from vidapter.files import write_atomic, write_text
from vidapter.presets import synthetic

log = logging.getLogger(__name__)


# Table 1's rows, plus the spatial row without the temporal embedding: the reference adds that embedding to every
# adapted variant, and through it spatial adapters alone can pick up frame order; this row shows what it adds.
ROWS = {row: (kinds, finetune, []) for row, (kinds, finetune) in ABLATION_ROWS.items()}
ROWS = dict(
    [*list(ROWS.items())[:2], ("spatial adaptation, no temporal embedding", (["spatial"], "adapters",
     ["model.temporal_embed=false"])), *list(ROWS.items())[2:]]
)  # fmt: skip


def default_data_dir() -> Path:
    return Path(os.environ.get("VIDAPTER_CACHE", Path.home() / ".cache" / "vidapter")) / "demo-data"


def ensure_data(data_dir: Path, per_class: dict[str, int], classes: list[int] | None = None) -> Path:
    """Write the synthetic dataset once into a folder of ``data_dir`` named after its settings; reuse it when it is
    already there (the demo and the tables use different class sets and keep one folder each)."""
    stamp = {"per_class": per_class, "classes": classes, "size": 32, "frames": 16, "seed": 0, "version": VERSION}
    data_dir = data_dir / hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:10]
    marker = data_dir / "dataset.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return data_dir
    print(f"writing the synthetic dataset to {data_dir} ...", file=sys.stderr, flush=True)
    make_synthetic(data_dir, per_class=per_class, size=32, frames=16, seed=0, classes=classes)
    write_text(marker, json.dumps(stamp) + "\n")
    return data_dir


def demo_config(data_dir: Path, run_dir: Path, overrides: list[str] = ()) -> Config:
    names = read_class_names(data_dir / "classes.txt")
    cfg = apply_overrides(synthetic(), [
        f"data.root={data_dir}", f"data.train_list={data_dir / 'train.txt'}", f"data.val_list={data_dir / 'val.txt'}",
        f"data.test_list={data_dir / 'test.txt'}", f"data.class_names={data_dir / 'classes.txt'}",
        f"model.num_classes={len(names)}", f"train.run_dir={run_dir}", *overrides,
    ])  # fmt: skip
    return cfg


def _within_groups(
    confusion: np.ndarray, idx: dict[str, int], groups: list[tuple[int, ...]]
) -> tuple[float | None, dict]:
    """For videos of the classes of each group present: how often the prediction is their own class rather than
    another member of their group (C[a,a] / sum over b in the group of C[a,b]); over all groups (None without any
    group) and per group."""
    hit = total = 0
    per = {}
    for group in groups:
        names = [CLASSES[c] for c in group]
        if all(n in idx for n in names):
            rows = [idx[n] for n in names]
            h, n = confusion[rows, rows].sum(), confusion[np.ix_(rows, rows)].sum()
            per["/".join(names)] = float(h / max(n, 1))
            hit, total = hit + h, total + n
    return (float(hit / total) if total else None), per


def group_accuracy(confusion: np.ndarray, names: list[str]) -> dict:
    """Accuracy within each order pair and each relation family present (all of them, and each one), top-1 over the
    appearance classes present, overall top-1."""
    idx = {n: i for i, n in enumerate(names)}
    pairs, per_pair = _within_groups(confusion, idx, ORDER_PAIRS)
    relations, per_relation = _within_groups(confusion, idx, RELATION_FAMILIES)
    app = [idx[CLASSES[c]] for c in APPEARANCE if CLASSES[c] in idx]
    app_total = confusion[app].sum()
    return {
        "pair_accuracy": pairs,
        "per_pair": per_pair,
        "relation_accuracy": relations,
        "per_relation": per_relation,
        "appearance_accuracy": float(confusion[app, app].sum() / app_total) if app_total else None,
        "top1": float(confusion.trace() / max(confusion.sum(), 1)),
    }


def train_and_test(cfg: Config) -> dict:
    """Train ``cfg``, then evaluate its final model on the test split; returns counts, metrics and wall time."""
    start = time.time()
    fit(cfg)
    seconds = time.time() - start
    model, cfg_saved, names = load_model(Path(cfg.train.run_dir) / "model")
    counts = count_parameters(model)
    return {"params": counts["total"], "trainable": counts["trainable"], "train_seconds": round(seconds, 1),
            **accuracy_on_test(model, cfg, names), "names": names}  # fmt: skip


def accuracy_on_test(model, cfg: Config, names: list[str]) -> dict:
    """``group_accuracy`` of ``model`` over the test split of ``cfg`` under its test views, on the CPU."""
    facts = model.backbone.facts
    ds, _ = build_dataset(cfg.data, "test", num_frames=cfg.model.num_frames, num_classes=cfg.model.num_classes,
                          mean=facts.mean, std=facts.std)  # fmt: skip
    loader = build_loader(ds, 32, train=False, workers=cfg.data.workers)
    clips, crops = test_views(cfg.data)
    m = evaluate(model, loader, device=torch.device("cpu"), num_classes=cfg.model.num_classes, clips=clips,
                 crops=crops, normalize=ds.normalize)  # fmt: skip
    return group_accuracy(m["confusion"], names)


def run_demo(data_dir: Path | None = None, run_dir: Path = Path("runs/demo"), overrides: list[str] = ()) -> dict:
    # order and appearance classes: the relation classes need more training than the demo's budget (--ablation)
    classes = [c for pair in ORDER_PAIRS for c in pair] + APPEARANCE
    data_dir = ensure_data(data_dir or default_data_dir(), {"train": 200, "val": 20, "test": 40}, sorted(classes))
    cfg = demo_config(data_dir, run_dir, ["train.resume=never", *overrides])
    result = train_and_test(cfg)
    print()
    print("AIM on the synthetic videos (test split, 40 clips per class):")
    print(f"  parameters: {result['params']:,} total, {result['trainable']:,} trainable "
          f"({100 * result['trainable'] / result['params']:.1f} %)")  # fmt: skip
    print(f"  order pairs (chance 50 %):   {100 * result['pair_accuracy']:.1f} %")
    print(f"  appearance classes:          {100 * result['appearance_accuracy']:.1f} %")
    print(f"  all {len(result['names'])} classes, top-1:       {100 * result['top1']:.1f} %")
    print(f"  training time:               {result['train_seconds']:.0f} s")
    print(f"  curves, confusion matrix and per-class accuracy: {run_dir}")
    model, cfg_saved, names = load_model(run_dir / "model")
    print("predictions on a few test clips:")
    for cls in ("move_right", "move_left", "grow", "rotate_cw", "stripes"):
        clip = data_dir / "test" / cls / "00000.mp4"
        top = predict_file(model, cfg_saved, clip, names=names, top_k=2)["top"]
        print(f"  {cls:<12} -> " + ", ".join(f"{t['name']} {t['prob']:.2f}" for t in top))
    write_text(run_dir / "demo.json", json.dumps({k: v for k, v in result.items() if k != "names"}, indent=2))
    return result


# Every method on the same image ViT (demo_vit: 4 blocks, 3 heads), data, steps, optimizer and evaluation. LoRA has
# no temporal modelling of its own: it is run with ZeroI2V's head shifts and with AIM's temporal pass.
METHOD_ROWS = {
    "frozen space-only (no temporal modelling)": ["model.adapters=", "model.temporal_embed=false"],
    "AIM": [],
    "ST-Adapter (before attention and MLP)": ["model.method=st_adapter", "model.adapters=", "model.st_adapter.width=48",
                                              "model.st_adapter.positions=attn,mlp"],
    "EVL (decoder on all 4 blocks)": ["model.method=evl", "model.adapters=", "model.evl.layers=4"],
    "ZeroI2V (head shifts -1, +1)": ["model.method=zeroi2v", "model.adapters=", "model.head_shifts=-1,1"],
    "LoRA r=8 + head shifts -1, +1": ["model.method=lora", "model.adapters=", "model.head_shifts=-1,1"],
    "LoRA r=8 + AIM's temporal pass": ["model.method=lora", "model.adapters=temporal"],
}  # fmt: skip


def training_memory(model: torch.nn.Module, batch: int, frames: int, size: int) -> dict:
    """Bytes one training step holds beyond the frozen weights, measured on this model: trainable weights, their
    gradients and AdamW's two moments, plus every tensor autograd keeps for backward (counted once per storage) for
    a batch of ``batch`` random clips. The same on any device; a GPU adds its allocator's rounding and workspaces."""
    storages: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    model.train()
    clip = torch.randn(batch, 3, frames, size, size, device=next(model.parameters()).device)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        loss = model(clip).logsumexp(-1).mean()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = sum(n for ptr, n in storages.items() if ptr not in weights)
    loss.backward()
    model.zero_grad(set_to_none=True)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return {"saved_for_backward": saved, "trainable_state": 4 * trainable, "total": saved + 4 * trainable}


def run_methods(
    data_dir: Path | None = None,
    run_dir: Path = Path("runs/methods"),
    rows: list[str] | None = None,
    per_class: dict[str, int] | None = None,
    classes: list[int] | None = None,
    overrides: list[str] = (),
) -> list[dict]:
    """Train every method of ``METHOD_ROWS`` with the same data and budget; write methods.md, methods.json and
    methods.png (accuracy, and training memory per step)."""
    table = _run_rows({r: METHOD_ROWS[r] for r in rows or METHOD_ROWS}, data_dir, run_dir, "methods", per_class,
                      classes, overrides, memory=True)  # fmt: skip
    return table


def run_ablation(
    data_dir: Path | None = None,
    run_dir: Path = Path("runs/ablation"),
    rows: list[str] | None = None,
    per_class: dict[str, int] | None = None,
    classes: list[int] | None = None,
    overrides: list[str] = (),
) -> list[dict]:
    """Train every row of Table 1 with the same data and budget; write ablation.md, ablation.json, ablation.png."""
    chosen = {}
    for row in rows or list(ROWS):
        kinds, finetune, extra = ROWS[row]
        chosen[row] = [f"model.adapters={','.join(kinds)}", f"model.finetune={finetune}", *extra]
    return _run_rows(chosen, data_dir, run_dir, "ablation", per_class, classes, overrides)


def _run_rows(rows: dict[str, list[str]], data_dir, run_dir: Path, name: str, per_class, classes, overrides,
              memory: bool = False) -> list[dict]:  # fmt: skip
    """Train each row (its overrides on the demo config) with the same data and budget; write a table, JSON, chart."""
    per_class = per_class or {"train": 200, "val": 20, "test": 40}
    data_dir = ensure_data(data_dir or default_data_dir(), per_class, classes)
    results = []
    for row, row_overrides in rows.items():
        slug = "".join(c if c.isalnum() else "_" for c in row.lower()).strip("_")
        print(f"\n== {row} ==", file=sys.stderr, flush=True)
        cfg = demo_config(data_dir, run_dir / slug, [*row_overrides, "train.resume=never", *overrides])
        result = {"row": row, **train_and_test(cfg)}
        if memory:
            model, _, _ = load_model(Path(cfg.train.run_dir) / "model")
            size = model.backbone.image_size
            result["memory"] = training_memory(model, cfg.train.batch_size, cfg.model.num_frames, size)
        results.append(result)
    head = "| row | total params | trainable | order pairs (chance 50 %) | rotation pair | relations (chance 50 %) "
    head += "| appearance | all classes | train time |" + (" training memory per step |" if memory else "")
    table = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in results:
        rot = r["per_pair"].get("rotate_cw/rotate_ccw")
        pct = [f"{100 * r[k]:.1f} %" if r[k] is not None else "-"
               for k in ("pair_accuracy", "relation_accuracy", "appearance_accuracy", "top1")]  # fmt: skip
        pct.insert(1, f"{100 * rot:.1f} %" if rot is not None else "-")
        cells = [r["row"], f"{r['params']:,}", f"{r['trainable']:,}", *pct, f"{r['train_seconds']:.0f} s"]
        if memory:
            cells.append(f"{r['memory']['total'] / 2**20:.1f} MiB")
        table.append("| " + " | ".join(cells) + " |")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / f"{name}.md", "\n".join(table) + "\n")
    out = [{k: v for k, v in r.items() if k != "names"} for r in results]
    write_text(run_dir / f"{name}.json", json.dumps(out, indent=2) + "\n")
    title = (
        "vidapter's methods on synthetic videos (same data, steps, evaluation)"
        if memory
        else "AIM ablation on synthetic videos (Table 1 in miniature)"
    )
    _bar_chart(results, run_dir / f"{name}.png", title)
    print("\n" + "\n".join(table))
    return results


def _bar_chart(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    rot = "rotate_cw/rotate_ccw"
    groups = {
        "order pairs": [r["pair_accuracy"] for r in results],
        "rotation pair": [r["per_pair"].get(rot) for r in results],
        "relations": [r["relation_accuracy"] for r in results],
        "appearance classes": [r["appearance_accuracy"] for r in results],
    }
    bars = [(label, values) for label, values in groups.items() if None not in values]  # the classes are in the data
    width = 0.8 / len(bars)
    for i, (label, values) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, [100 * v for v in values], width, label=label)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="chance within a pair or family")
    ax.set_xticks(x, [r["row"] for r in results], rotation=15, ha="right", fontsize=8)
    ax.set(ylabel="test accuracy (%)", ylim=(0, 105), title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4, fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


# What each synthetic class looks like, in the words of the demo CLIP's captions (vidapter.demo.images.caption): the
# class names zero-shot classification reads. Captions describe still images, so the words of motion and order are
# ones the text tower never saw tied to an image: those classes can only be told apart by training.
DESCRIPTIONS = {
    "move_right": "an object moving right", "move_left": "an object moving left", "move_down": "an object moving down",
    "move_up": "an object moving up", "grow": "an object growing", "shrink": "an object shrinking",
    "appear": "an object appearing", "vanish": "an object vanishing", "rotate_cw": "a clock hand turning clockwise",
    "rotate_ccw": "a clock hand turning counterclockwise", "stripes": "stripes", "checkerboard": "a checkerboard",
    "rings": "rings",
}  # fmt: skip


def run_zero_shot(data_dir: Path | None = None, run_dir: Path = Path("runs/zero-shot"),
                  overrides: list[str] = ()) -> dict:  # fmt: skip
    """The demo CLIP (the demo ViT and its text tower, pretrained on captions of synthetic images) classifies the
    demo's videos by their descriptions with no video training; then AIM with the text head trains from there."""
    from vidapter.zeroshot import zero_shot_model

    classes = [c for pair in ORDER_PAIRS for c in pair] + APPEARANCE
    data_dir = ensure_data(data_dir or default_data_dir(), {"train": 200, "val": 20, "test": 40}, sorted(classes))
    names = read_class_names(data_dir / "classes.txt")
    descriptions = run_dir / "descriptions.txt"
    write_text(descriptions, "".join(DESCRIPTIONS[n] + "\n" for n in names))
    cfg = demo_config(data_dir, run_dir, ["train.resume=never", f"data.class_names={descriptions}",
                                          "model.head=text", 'model.templates=["{}"]', *overrides])  # fmt: skip
    start = time.time()
    zs = zero_shot_model(
        "vidapter:demo-vit",
        [DESCRIPTIONS[n] for n in names],
        templates=["{}"],
        overrides=[
            f"--data.{k}={v}" for k, v in (("root", data_dir), ("test_list", data_dir / "test.txt"), ("workers", 1))
        ],
    )
    zero_shot = {**accuracy_on_test(zs, zs.config, names), "seconds": round(time.time() - start, 1)}
    start = time.time()
    fit(cfg)
    seconds = time.time() - start
    model, saved, _ = load_model(run_dir / "model")
    trained = {**accuracy_on_test(model, saved, names), "train_seconds": round(seconds, 1)}
    print()
    print("Zero-shot, the demo CLIP and the classes' descriptions, no video training (test split, 40 clips per class):")
    print(f"  appearance classes, top-1 (chance {100 / len(names):.0f} %):      "
          f"{100 * zero_shot['appearance_accuracy']:.1f} %")  # fmt: skip
    print(f"  order pairs (chance 50 %):                    {100 * zero_shot['pair_accuracy']:.1f} %")
    print(f"  all {len(names)} classes, top-1:                       {100 * zero_shot['top1']:.1f} %")
    print(f"AIM with the text head, trained from there ({trained['train_seconds']:.0f} s):")
    print(f"  appearance classes, top-1:                    {100 * trained['appearance_accuracy']:.1f} %")
    print(f"  order pairs:                                  {100 * trained['pair_accuracy']:.1f} %")
    print(f"  all {len(names)} classes, top-1:                       {100 * trained['top1']:.1f} %")
    result = {"zero_shot": zero_shot, "aim_text_head": trained}
    write_text(run_dir / "zero_shot.json", json.dumps(result, indent=2) + "\n")
    return result

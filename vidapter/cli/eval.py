"""``vidapter eval``: multi-view metrics of a model directory, run directory or checkpoint over a split."""

from __future__ import annotations

import copy
import json
import logging

from vidapter.cli.common import (
    OVERRIDES_HELP,
    inference_options,
    not_zero_shot,
    runtime_from,
    trust_option,
    zero_shot_options,
)
from vidapter.config import ConfigError, apply_overrides
from vidapter.files import write_text

log = logging.getLogger("vidapter")


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model directory, run directory or checkpoint (or a CLIP, zero-shot)",
                       epilog=OVERRIDES_HELP)  # fmt: skip
    p.add_argument("model", help="a model or run directory or a checkpoint; with --zero-shot a CLIP-style model "
                   "(a published name, or a file or directory with a text tower) or a trained model with a text "
                   "head")  # fmt: skip
    p.add_argument(
        "--zero-shot",
        action="store_true",
        help="classify by the class names of --data.class_names with the model's text tower: a CLIP with no "
        "training, or a trained text-head model on another dataset's names (cross-dataset zero-shot)",
    )
    zero_shot_options(p)
    p.add_argument(
        "--novel",
        nargs=2,
        metavar=("LIST", "CLASSES"),
        help="base-to-novel: also evaluate LIST with the class names of CLASSES alone (a model with a text "
        "head), and report base, novel and their harmonic mean; the config's list and names are the base",
    )
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--views", help="FRAMESxCLIPSxCROPS, e.g. 8x3x1 (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--json", help="write the metrics (and confusion matrix) to this JSON file")
    p.add_argument("--unreadable", default="exclude", choices=["exclude", "wrong"],
                   help="a video that cannot be read: exclude (default) leaves it out of every metric and lists it; "
                   "wrong counts it as a miss, so the metrics stay over all the split's videos")  # fmt: skip
    inference_options(p)
    trust_option(p)
    p.add_argument("--compile", default="auto", choices=["auto", "true", "false"],
                   help="torch.compile the model (auto: on CUDA; about half a minute, then faster)")  # fmt: skip


def parse_views(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"--views expects FRAMESxCLIPSxCROPS such as 8x3x1, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def run(args, overrides: list[str]) -> int:
    from vidapter.classifier import is_model_path, load_model
    from vidapter.data.build import test_views
    from vidapter.data.datasets import read_class_names
    from vidapter.runtime import place_for_inference

    if args.zero_shot and is_model_path(args.model):  # a trained text head, on the names of another dataset
        given = [f"--{k}" for k in ("backbone", "preset") if getattr(args, k)]
        if given:
            raise ConfigError(f"{', '.join(given)}: {args.model} is a trained model, whose row and views are its own "
                              "(override views with --views or --data.*)")  # fmt: skip
        model, cfg, _ = load_model(args.model, trust_pickle=args.trust_pickle)
        cfg = apply_overrides(cfg, overrides)
        if not cfg.data.class_names:
            raise ConfigError("--zero-shot needs the class names: set --data.class_names=FILE (one per line)")
        names = read_class_names(cfg.data.class_names)
        model.set_class_names(names, templates=args.template, trust_pickle=args.trust_pickle)
        cfg.model.num_classes = len(names)
    elif args.zero_shot:
        from vidapter.zeroshot import zero_shot_model

        model = zero_shot_model(args.model, templates=args.template, backbone=args.backbone, preset=args.preset,
                                overrides=overrides, trust_pickle=args.trust_pickle)  # fmt: skip
        cfg = model.config
    else:
        not_zero_shot(args, "--zero-shot")
        model, cfg, _ = load_model(args.model, trust_pickle=args.trust_pickle)
        cfg = apply_overrides(cfg, overrides)  # returns a new config
    clips, crops = (1, 1) if args.split == "val" else test_views(cfg.data)
    if args.split == "val" and args.views:
        raise ConfigError("--views applies to --split test (val uses 1 clip x 1 centre crop)")
    if args.views:
        frames, clips, crops = parse_views(args.views)
        if frames != cfg.model.num_frames:
            raise ConfigError(f"--views {args.views}: the model takes {cfg.model.num_frames} frames")
        if cfg.data.sampling != "dense" and clips != 1:
            raise ConfigError(f"{cfg.data.sampling} sampling has one clip of T segments; use 1 clip")
        cfg.data.test_clips, cfg.data.test_crops = clips, crops
    rt = runtime_from(args)
    place_for_inference(model, rt)
    log.info("eval on %s, amp %s, %s", rt.device, rt.amp_name,
             "compiled (the first batches compile)" if rt.compile else "eager")  # fmt: skip
    protocol = f"{cfg.model.num_frames}x{clips}x{crops} (frames x clips x crops)"
    out, metrics = _evaluate(model, cfg, args, rt, clips, crops)
    out.update(split=args.split, protocol=protocol, device=str(rt.device), amp=rt.amp_name, compiled=rt.compile)
    report = {**out, "confusion": metrics["confusion"].tolist()}
    _print(args.split if not args.novel else f"{args.split} (base classes)", out, metrics, protocol)
    if args.novel:
        from vidapter.data.protocols import harmonic_mean

        novel_list, novel_classes = args.novel
        names = read_class_names(novel_classes)
        model.set_class_names(names, trust_pickle=args.trust_pickle)  # a text head: refused otherwise
        cfg = copy.deepcopy(cfg)
        cfg.data.class_names, cfg.model.num_classes = novel_classes, len(names)
        cfg.data.test_list = cfg.data.val_list = novel_list
        novel, novel_metrics = _evaluate(model, cfg, args, rt, clips, crops)
        _print(f"{args.split} (novel classes)", novel, novel_metrics, protocol)
        hm = harmonic_mean(out["top1"], novel["top1"])
        print(f"  base {out['top1']:.4f}  novel {novel['top1']:.4f}  harmonic mean {hm:.4f} (multi-view top-1)")
        report = {"base": report, "novel": {**novel, "confusion": novel_metrics["confusion"].tolist()},
                  "harmonic_mean": hm, "protocol": protocol}  # fmt: skip
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


def _evaluate(model, cfg, args, rt, clips: int, crops: int) -> tuple[dict, dict]:
    """The metrics of ``model`` over the config's ``args.split`` list: (what is reported, everything)."""
    from vidapter.data.build import build_dataset
    from vidapter.data.loader import build_loader
    from vidapter.evaluation import evaluate

    facts = model.backbone.facts
    ds, _ = build_dataset(cfg.data, args.split, num_frames=cfg.model.num_frames, num_classes=cfg.model.num_classes,
                          mean=facts.mean, std=facts.std)  # fmt: skip
    loader = build_loader(ds, args.batch_size, train=False, workers=cfg.data.workers)
    metrics = evaluate(rt.compiled(model), loader, device=rt.device, num_classes=cfg.model.num_classes, clips=clips,
                       crops=crops, amp=rt.amp, normalize=ds.normalize, unreadable=args.unreadable)  # fmt: skip
    return {k: v for k, v in metrics.items() if k not in ("confusion", "skipped")}, metrics


def _print(title: str, out: dict, metrics: dict, protocol: str) -> None:
    from vidapter.evaluation import coverage

    print(f"{title}: {out['videos']} videos, views {protocol}; {coverage(metrics)}")
    for e in out["excluded"]:
        print(f"  unreadable: {e['path']}: {e['reason']}")
    print(f"  multi-view  top-1 {out['top1']:.4f}  top-5 {out['top5']:.4f}  mean class {out['mean_class_acc']:.4f}")
    print(f"  single-view top-1 {out['single_view_top1']:.4f}  top-5 {out['single_view_top5']:.4f} (centre view)")

"""Command line: ``vidapter info`` and ``vidapter convert``. Thin: parsing and printing, the work is in the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from vidapter.adapters.peft import count_parameters
from vidapter.config import Config, ConfigError, apply_overrides
from vidapter.data.prepare import KINETICS_TEMPLATE
from vidapter.models.build import build_model
from vidapter.models.convert import ConversionError, aim_official_to_vidapter, detect_format
from vidapter.models.flops import count_macs
from vidapter.models.pretrained import WeightsError, check_keys, read_checkpoint, save_pretrained
from vidapter.presets import PRESETS, get_preset

log = logging.getLogger("vidapter")


def _config(args: argparse.Namespace, overrides: list[str]) -> Config:
    cfg = get_preset(args.preset) if args.preset else Config()
    return apply_overrides(cfg, overrides)


def model_info(cfg: Config) -> dict:
    """Parameter counts and GFLOPs per view of the model ``cfg`` describes, built on the meta device (no weights)."""
    m = dataclasses.replace(cfg.model, pretrained=None)
    with torch.device("meta"):
        model = build_model(m)
    size = model.backbone.image_size
    counts = count_parameters(model)
    macs = count_macs(model, (1, 3, m.num_frames, size, size))
    return {
        "preset": cfg.name,
        "backbone": m.backbone,
        "pretrained": cfg.model.pretrained,
        "view": {"frames": m.num_frames, "height": size, "width": size},
        "adapters": m.adapters,
        "adapter_layers": m.adapter_layers,
        "finetune": m.finetune,
        "params": counts,
        "gflops_per_view": macs / 1e9,
        "flops_convention": "multiply-accumulates (fvcore/paper), torch.utils.flop_counter on meta tensors",
    }


def _print_info(info: dict) -> None:
    p = info["params"]
    v = info["view"]
    rows = [
        ("image backbone (+ final norm)", p["backbone"]),
        ("adapters", p["adapters"]),
        ("temporal embedding", p["temporal_embed"]),
        ("head", p["head"]),
        ("total", p["total"]),
        ("trainable", p["trainable"]),
    ]
    print(f"{info['preset']}: {info['backbone']} (weights: {info['pretrained'] or 'random init'})")
    kinds = ",".join(info["adapters"]) or "none"
    print(f"adapters: {kinds} on layers {info['adapter_layers']}, finetune={info['finetune']}")
    for name, n in rows:
        print(f"  {name:<26}{n:>14,}  {n / 1e6:8.2f}M")
    print(f"  {'trainable share':<26}{100 * p['trainable'] / p['total']:>13.1f}%")
    print(f"GFLOPs per view ({v['frames']}x{v['height']}x{v['width']}): {info['gflops_per_view']:.1f}")
    print(f"  ({info['flops_convention']})")


def cmd_info(args: argparse.Namespace, overrides: list[str]) -> int:
    info = model_info(_config(args, overrides))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def cmd_convert(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = _config(args, overrides)
    raw = read_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle)
    fmt = detect_format(raw)
    if fmt != "aim_official":
        raise WeightsError(f"{args.checkpoint}: layout is {fmt!r}, expected a released AIM (MMAction2) checkpoint")
    sd = aim_official_to_vidapter(raw)
    cfg.model.pretrained = None  # every weight comes from the checkpoint
    if "temporal_embed" in sd:
        cfg.model.num_frames = sd["temporal_embed"].shape[1]
    cfg.model.num_classes = sd["head.fc.weight"].shape[0]
    model = build_model(cfg.model)
    check_keys(sd, model.state_dict(), f"{args.checkpoint} does not fit preset {cfg.name}")
    model.load_state_dict(sd, strict=True)
    names = Path(args.class_names).read_text().splitlines() if args.class_names else None
    out = save_pretrained(model, cfg, args.out_dir, names)
    print(f"wrote {out} ({len(sd)} tensors, {cfg.model.num_frames} frames, {cfg.model.num_classes} classes)")
    return 0


def cmd_data(args: argparse.Namespace, overrides: list[str]) -> int:
    if overrides:
        raise ConfigError(f"vidapter data takes no config overrides, got {overrides}")
    if args.data_command == "synth":
        from vidapter.data.synthetic import make_synthetic

        split_sizes = {"train": args.train, "val": args.val, "test": args.test}
        paths = make_synthetic(args.out_dir, per_class=split_sizes, size=args.size, frames=args.frames,
                               seed=args.seed, workers=args.workers)  # fmt: skip
        print("wrote " + ", ".join(f"{k}: {v}" for k, v in paths.items()))
        return 0
    if args.data_command == "check":
        from vidapter.data.check import check_samples, write_report
        from vidapter.data.datasets import read_annotations

        samples = read_annotations(args.list, root=args.root, fmt=args.format)
        bad = check_samples(samples, workers=args.workers, backend=args.backend)
        report = write_report(bad, len(samples), args.report or Path(args.list).with_suffix(".check.json"))
        for path, reason in bad.items():
            print(f"{path}: {reason}")
        print(f"{len(samples) - len(bad)}/{len(samples)} readable; report: {report}")
        return 1 if bad else 0
    from vidapter.data import prepare

    if args.dataset == "kinetics":
        classes, lists = prepare.kinetics(args.src, args.path_template)
    elif args.dataset in ("ssv2", "diving48"):
        if len(args.src) < 2:
            raise ValueError(f"{args.dataset} needs --src LABELS_OR_VOCAB_JSON SPLIT_JSON [SPLIT_JSON ...]")
        classes, lists = getattr(prepare, args.dataset)(args.src[0], args.src[1:])
    else:
        classes, lists = getattr(prepare, args.dataset)(args.src[0], args.split)
    paths = prepare.write_lists(classes, lists, args.out_dir)
    print(f"{len(classes)} classes; " + ", ".join(f"{k}: {len(lists[k])} videos -> {v}" for k, v in paths.items()))
    if args.resize_short:
        from vidapter.data.resize import resize_tree

        if not (args.video_root and args.resized_root):
            raise ValueError("--resize-short needs --video-root (the originals) and --resized-root (the output)")
        rels = [p for items in lists.values() for p, _ in items]
        failed = resize_tree(rels, args.video_root, args.resized_root, short_side=args.resize_short)
        for path, reason in failed.items():
            print(f"{path}: {reason}")
        print(f"resized {len(set(rels)) - len(failed)} videos to short side {args.resize_short} in {args.resized_root}")
        return 1 if failed else 0
    return 0


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="prepare, check and synthesise video datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    synth = dsub.add_parser("synth", help="write the synthetic H.264 dataset (order pairs + appearance classes)")
    synth.add_argument("out_dir")
    synth.add_argument("--train", type=int, default=100, help="clips per class")
    synth.add_argument("--val", type=int, default=20)
    synth.add_argument("--test", type=int, default=20)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--frames", type=int, default=16)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int)
    check = dsub.add_parser("check", help="decode every video of a list, report the unreadable ones")
    check.add_argument("list")
    check.add_argument("--root", help="folder the list's paths are relative to (default: the list's folder)")
    check.add_argument("--format", default="auto", choices=["auto", "list", "csv", "rawframes"])
    check.add_argument("--backend", default="pyav", choices=["pyav", "decord", "torchcodec"])
    check.add_argument("--workers", type=int)
    check.add_argument("--report", help="JSON report path (default: LIST with .check.json)")
    prep = dsub.add_parser("prepare", help="native annotations -> list files + classes.txt")
    prep.add_argument("dataset", choices=["kinetics", "ssv2", "diving48", "ucf101", "hmdb51"])
    prep.add_argument("--src", nargs="+", required=True,
                      help="kinetics: CSVs; ssv2: labels.json split.json...; diving48: vocab.json split.json...; "
                      "ucf101/hmdb51: the split folder")  # fmt: skip
    prep.add_argument("--out-dir", required=True)
    prep.add_argument("--split", type=int, default=1, help="ucf101/hmdb51 split number")
    prep.add_argument("--path-template", default=KINETICS_TEMPLATE, help="kinetics video path template")
    prep.add_argument("--resize-short", type=int, help="also re-encode every listed video at this short side (256)")
    prep.add_argument("--video-root", help="folder of the original videos (with --resize-short)")
    prep.add_argument("--resized-root", help="folder for the re-encoded videos, same relative paths")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidapter",
        description="Adapt image models to video action recognition (AIM). Overrides: --section.field=value.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="parameters and GFLOPs per view of a preset")
    info.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME", help="one of: " + ", ".join(PRESETS))
    info.add_argument("--json", action="store_true")
    conv = sub.add_parser("convert", help="convert a released checkpoint into a vidapter model directory")
    conv.add_argument("kind", choices=["aim-official"])
    conv.add_argument("checkpoint")
    conv.add_argument("out_dir")
    conv.add_argument("--preset", required=True, choices=sorted(PRESETS), metavar="NAME")
    conv.add_argument("--class-names", help="text file, one class name per line")
    conv.add_argument("--trust-pickle", action="store_true", help="allow non-tensor Python objects in the file")
    _add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args, rest = build_parser().parse_known_args(argv)
    bad = [r for r in rest if not r.startswith("--") or "=" not in r]
    if bad:
        print(
            f"vidapter: error: unrecognised arguments {bad}; overrides look like --model.num_frames=16", file=sys.stderr
        )
        return 2
    commands = {"info": cmd_info, "convert": cmd_convert, "data": cmd_data}
    try:
        return commands[args.command](args, rest)
    except (ConfigError, WeightsError, ConversionError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"vidapter: error: {e}", file=sys.stderr)
        return 2

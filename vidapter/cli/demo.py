"""``vidapter demo``: AIM (or every method, Table 1's rows, or zero-shot classification) on synthetic videos, on the
CPU in minutes."""

from __future__ import annotations

from pathlib import Path

from vidapter.config import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="AIM on synthetic videos with vidapter's own image ViT, on CPU in minutes")
    ablation = "Table 1 in miniature: seven rows, same budget (order pairs, relations, appearance)"
    p.add_argument("--ablation", action="store_true", help=ablation)
    methods = "every method (AIM, ST-Adapter, EVL, ZeroI2V, LoRA) on the same data, steps and evaluation"
    p.add_argument("--methods", action="store_true", help=methods)
    zero_shot = ("the demo CLIP classifies the videos by their descriptions with no training, then AIM with the text "
                 "head trains from there")  # fmt: skip
    p.add_argument("--zero-shot", action="store_true", help=zero_shot)
    p.add_argument("--data-dir", help="synthetic dataset cache (default ~/.cache/vidapter/demo-data)")
    p.add_argument("--run-dir", help="default runs/demo, runs/ablation or runs/methods")


def run(args, overrides: list[str]) -> int:
    from vidapter.demo.run import run_ablation, run_demo, run_methods, run_zero_shot

    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.ablation + args.methods + args.zero_shot > 1:
        raise ConfigError("vidapter demo takes one of --ablation, --methods and --zero-shot")
    if args.zero_shot:
        run_zero_shot(data_dir, Path(args.run_dir or "runs/zero-shot"), overrides=overrides)
    elif args.methods:
        run_methods(data_dir, Path(args.run_dir or "runs/methods"), overrides=overrides)
    elif args.ablation:
        run_ablation(data_dir, Path(args.run_dir or "runs/ablation"), overrides=overrides)
    else:
        run_demo(data_dir, Path(args.run_dir or "runs/demo"), overrides=overrides)
    return 0

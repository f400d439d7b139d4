"""``vidapter demo``: AIM (or every method, or Table 1's rows) on synthetic videos, on the CPU in minutes."""

from __future__ import annotations

from pathlib import Path

from vidapter.config import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="AIM on synthetic videos with vidapter's own image ViT, on CPU in minutes")
    ablation = "Table 1 in miniature: seven rows, same budget (order pairs, relations, appearance)"
    p.add_argument("--ablation", action="store_true", help=ablation)
    methods = "every method (AIM, ST-Adapter, EVL, ZeroI2V, LoRA) on the same data, steps and evaluation"
    p.add_argument("--methods", action="store_true", help=methods)
    p.add_argument("--data-dir", help="synthetic dataset cache (default ~/.cache/vidapter/demo-data)")
    p.add_argument("--run-dir", help="default runs/demo, runs/ablation or runs/methods")


def run(args, overrides: list[str]) -> int:
    from vidapter.demo.run import run_ablation, run_demo, run_methods

    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.ablation and args.methods:
        raise ConfigError("vidapter demo takes --ablation or --methods, not both")
    if args.methods:
        run_methods(data_dir, Path(args.run_dir or "runs/methods"), overrides=overrides)
    elif args.ablation:
        run_ablation(data_dir, Path(args.run_dir or "runs/ablation"), overrides=overrides)
    else:
        run_demo(data_dir, Path(args.run_dir or "runs/demo"), overrides=overrides)
    return 0

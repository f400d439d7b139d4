"""``vidapter export``: the adapters alone (a small file), or a full model directory, optionally merged."""

from __future__ import annotations

from vidapter.adapters.registry import mergeable
from vidapter.cli.common import no_overrides, trust_option
from vidapter.config import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export adapters only (small file) or a full model directory")
    p.add_argument("model")
    p.add_argument("--adapters", help="output .safetensors with the trainable tensors and the backbone identity")
    p.add_argument("--model-dir", help="output model directory (config.json + model.safetensors + classes.txt)")
    p.add_argument("--merge", action="store_true", help="fold the mergeable methods' modules into the frozen weights "
                   f"first ({', '.join(mergeable())}; checked against the unmerged logits)")  # fmt: skip
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.adapters.peft import export_adapters
    from vidapter.classifier import load_model, merge_adapters, save_pretrained
    from vidapter.config import to_dict

    no_overrides("export", overrides)
    if not (args.adapters or args.model_dir):
        raise ConfigError("export needs --adapters FILE and/or --model-dir DIR")
    if args.merge and (args.adapters or not args.model_dir):
        raise ConfigError("export --merge writes a model directory: give --model-dir DIR (and no --adapters)")
    model, cfg, names = load_model(args.model, trust_pickle=args.trust_pickle)
    if args.merge:
        method = cfg.model.method
        cfg, diff = merge_adapters(model, cfg)
        print(f"merged the {method} model's adapters into its frozen weights (largest logit change {diff:.2g})")
    if args.adapters:
        path = export_adapters(model, args.adapters, backbone=cfg.model.pretrained or cfg.model.backbone,
                               config=to_dict(cfg))  # fmt: skip
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, trainable tensors only)")
    if args.model_dir:
        print(f"wrote {save_pretrained(model, cfg, args.model_dir, names, intact=f'{args.model} is unchanged')}")
    return 0

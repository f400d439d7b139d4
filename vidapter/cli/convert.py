"""``vidapter convert``: a released checkpoint of a method's official code -> a vidapter model directory."""

from __future__ import annotations

from vidapter.adapters.registry import official_kinds
from vidapter.cli.common import OVERRIDES_HELP, config_from, preset_option, trust_option
from vidapter.official import convert_official


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert a released checkpoint into a vidapter model directory",
                       epilog=OVERRIDES_HELP)  # fmt: skip
    p.add_argument("kind", choices=list(official_kinds()))
    p.add_argument("checkpoint")
    p.add_argument("out_dir")
    preset_option(p, required=True)
    p.add_argument("--class-names", help="text file, one class name per line")
    p.add_argument("--backbone", help="image weights the trained tensors sit on (st-adapter-official, "
                   "evl-official): any name or file model.pretrained takes; default: the preset's")  # fmt: skip
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    out, tensors, cfg = convert_official(args.kind, args.checkpoint, args.out_dir, config_from(args, overrides),
                                         backbone=args.backbone, class_names=args.class_names,
                                         trust_pickle=args.trust_pickle)  # fmt: skip
    print(f"wrote {out} ({tensors} tensors, {cfg.model.num_frames} frames, {cfg.model.num_classes} classes)")
    return 0

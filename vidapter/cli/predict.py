"""``vidapter predict``: classify video files or folders (one prediction each, or one per window)."""

from __future__ import annotations

import json
import sys

from vidapter.cli.common import (
    OVERRIDES_HELP,
    inference_options,
    not_zero_shot,
    runtime_from,
    trust_option,
    zero_shot_options,
)
from vidapter.config import ConfigError, apply_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify video files or folders (zero-shot with --labels)",
                       epilog=OVERRIDES_HELP)  # fmt: skip
    p.add_argument("model", help="a model or run directory or a checkpoint; with --labels also a CLIP-style model: "
                   "a published name (openai:ViT-B/16) or a file or directory with a text tower (a trained model with "
                   "a text head classifies into the labels instead of its classes)")  # fmt: skip
    p.add_argument("videos", nargs="+")
    p.add_argument("--labels", help='zero-shot: your class names, comma-separated ("juggling,archery")')
    p.add_argument("--labels-file", help="zero-shot: your class names, one per line")
    zero_shot_options(p)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--window", type=float, help="seconds: one prediction per window along the timeline")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    inference_options(p)
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.classifier import is_model_path, load_model, predict_file
    from vidapter.data.decode import VideoError, video_files
    from vidapter.runtime import place_for_inference

    labels = args.labels is not None or args.labels_file is not None
    if labels and not is_model_path(args.model):
        from vidapter.zeroshot import read_labels, zero_shot_model

        model = zero_shot_model(args.model, read_labels(args.labels, args.labels_file), templates=args.template,
                                backbone=args.backbone, preset=args.preset, overrides=overrides,
                                trust_pickle=args.trust_pickle)  # fmt: skip
        cfg, names = model.config, model.class_names
    elif labels:  # a trained model with a text head: its classes become these names
        from vidapter.zeroshot import read_labels

        if args.backbone or args.preset:
            raise ConfigError("--backbone and --preset apply to a CLIP file; a trained model has its own")
        model, cfg, _ = load_model(args.model, trust_pickle=args.trust_pickle)
        model.set_class_names(read_labels(args.labels, args.labels_file), templates=args.template,
                              trust_pickle=args.trust_pickle)  # fmt: skip
        cfg, names = apply_overrides(cfg, overrides), model.class_names
    else:
        not_zero_shot(args, "--labels or --labels-file")
        model, cfg, names = load_model(args.model, trust_pickle=args.trust_pickle)
        cfg = apply_overrides(cfg, overrides)
    rt = runtime_from(args)
    place_for_inference(model, rt)
    failed = 0
    for path in video_files(args.videos):
        try:
            result = predict_file(model, cfg, path, names=names, top_k=args.top_k, window=args.window,
                                  device=rt.device, amp=rt.amp)  # fmt: skip
        except VideoError as e:  # one unreadable file: said, and the others still classified
            print(f"{e}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(result))
        elif "windows" in result:
            for w in result["windows"]:
                best = ", ".join(f"{t['name']} {t['prob']:.2f}" for t in w["top"])
                print(f"{path} [{w['start_s']:.1f}-{w['end_s']:.1f}s]: {best}")
        else:
            print(f"{path}: " + ", ".join(f"{t['name']} {t['prob']:.2f}" for t in result["top"]))
    return 1 if failed else 0

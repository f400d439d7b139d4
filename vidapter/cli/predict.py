"""``vidapter predict``: classify video files or folders (one prediction each, or one per window)."""

from __future__ import annotations

import json
import sys

from vidapter.cli.common import OVERRIDES_HELP, inference_options, runtime_from, trust_option
from vidapter.config import apply_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify video files or folders", epilog=OVERRIDES_HELP)
    p.add_argument("model")
    p.add_argument("videos", nargs="+")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--window", type=float, help="seconds: one prediction per window along the timeline")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    inference_options(p)
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.classifier import load_model, predict_file
    from vidapter.data.decode import VideoError, video_files
    from vidapter.runtime import place_for_inference

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

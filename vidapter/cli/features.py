"""``vidapter features``: clip features of videos for downstream models (temporal action detection, retrieval)."""

from __future__ import annotations

from pathlib import Path

from vidapter.cli import common
from vidapter.config import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("features", help="write one .npy of sliding-window features per video (ActionFormer / "
                       "OpenTAD layout) and features.json", epilog=common.OVERRIDES_HELP)  # fmt: skip
    p.add_argument("model", help="a model or run directory or a checkpoint")
    p.add_argument("videos", nargs="+", help="video files, folders of videos, or list files (.txt/.csv: a path "
                   "first on each line, relative to the list's folder or --root)")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--window", type=int, default=None, help="frames per window (default: the model's T x the "
                   "recipe's frame interval for dense sampling, else 16)")  # fmt: skip
    p.add_argument("--stride", type=int, default=None, help="frames between window starts (default: half the window)")
    p.add_argument("--feature", default="video", help="video (the embedding the head reads; default), frames (every "
                   "frame's feature: windows x T x D) or block:N (tokens after block N, averaged)")  # fmt: skip
    p.add_argument(
        "--name",
        default="stem",
        choices=["stem", "path"],
        help="an array's name: its video's file name "
        "(default), or its path below the videos' common folder with __ for / (names that repeat)",
    )
    p.add_argument("--root", help="the folder list files' paths are relative to (default: the list's folder)")
    p.add_argument("--workers", type=int, default=2, help="decoding processes (default 2)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward (default 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common.inference_options(p)
    common.trust_option(p)


def list_videos(inputs: list[str], root: str | None) -> list[Path]:
    """Video files from files, folders and list files (a path first on each line; blank and # lines skipped)."""
    from vidapter.data.decode import video_files

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.suffix in (".txt", ".csv") and path.is_file():
            base = Path(root) if root else path.parent
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                first = line.split(",")[0] if path.suffix == ".csv" else line.split()[0]
                if n == 1 and path.suffix == ".csv" and first in ("path", "video", "filename"):
                    continue  # a header
                out.append(base / first)
        else:
            out += video_files([item])
    if not out:
        raise ConfigError(f"no videos in {', '.join(inputs)}")
    return out


def run(args, overrides: list[str]) -> int:
    from vidapter.classifier import load_model
    from vidapter.config import apply_overrides
    from vidapter.features import extract_features
    from vidapter.runtime import place_for_inference

    model, cfg, _ = load_model(args.model, trust_pickle=args.trust_pickle)
    cfg = apply_overrides(cfg, overrides)
    t = cfg.model.num_frames
    window = args.window or (t * cfg.data.frame_interval if cfg.data.sampling == "dense" else 16)
    stride = args.stride or max(1, window // 2)
    rt = common.runtime_from(args)
    place_for_inference(model, rt)
    result = extract_features(model, cfg, list_videos(args.videos, args.root), args.out, window=window, stride=stride,
                              feature=args.feature, workers=args.workers, batch_size=args.batch_size,
                              device=rt.device, model_name=str(args.model), progress=not args.quiet,
                              name=args.name)  # fmt: skip
    shape = " x ".join(map(str, result["row_shape"])) if result["row_shape"] else "none written"
    print(f"{len(result['videos'])} videos in {args.out} (window {window} frames, stride {stride}, feature "
          f"{args.feature}, arrays {shape}); {len(result['unreadable'])} unreadable")  # fmt: skip
    for bad in result["unreadable"]:
        print(f"  unreadable: {bad['reason']}")
    return 1 if result["unreadable"] else 0

"""``vidapter export``: the adapters alone (a small file), a full model directory (optionally merged), or a program
for other runtimes (ONNX, ``torch.export``), checked against the model after writing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from vidapter.adapters.registry import mergeable
from vidapter.cli.common import no_overrides, trust_option
from vidapter.config import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export adapters only (small file), a full model directory, or an ONNX / "
                       "torch.export program")  # fmt: skip
    p.add_argument("model")
    p.add_argument("--adapters", help="output .safetensors with the trainable tensors and the backbone identity")
    p.add_argument("--model-dir", help="output model directory (config.json + model.safetensors + classes.txt)")
    p.add_argument("--onnx", metavar="OUT.onnx", help="output ONNX program (batch dynamic; run by onnxruntime)")
    p.add_argument("--torch-export", metavar="OUT.pt2", help="output torch.export program (batch dynamic)")
    p.add_argument("--uint8", action="store_true", help="the program takes uint8 frames (B, T, H, W, 3) and "
                   "normalises inside (default: the normalised float video (B, 3, T, H, W))")  # fmt: skip
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest logit difference allowed between the program and the model, times 1 + the largest "
                   "logit (default 1e-4)")  # fmt: skip
    p.add_argument("--check-video", metavar="FILE", help="the decoded clip of the check (default: a synthetic clip)")
    p.add_argument("--merge", action="store_true", help="fold the mergeable methods' modules into the frozen weights "
                   f"first ({', '.join(mergeable())}; checked against the unmerged logits)")  # fmt: skip
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.adapters.peft import export_adapters
    from vidapter.classifier import load_model, merge_adapters, save_pretrained
    from vidapter.config import to_dict

    no_overrides("export", overrides)
    programs = args.onnx or args.torch_export
    if not (args.adapters or args.model_dir or programs):
        raise ConfigError("export needs --adapters FILE, --model-dir DIR, --onnx FILE or --torch-export FILE")
    if args.merge and args.adapters:
        raise ConfigError("export --merge writes a merged model: give --model-dir DIR, --onnx or --torch-export "
                          "(adapters are exported unmerged)")  # fmt: skip
    if args.uint8 and not programs:
        raise ConfigError("--uint8 applies to --onnx and --torch-export")
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
    if programs:
        export_programs(model, cfg, names, args)
    return 0


def export_programs(model, cfg, names, args) -> None:
    """Write the ONNX and / or torch.export programs, print what a caller must do before them, and check each
    against the model on random clips at batch 1 and 3 and one decoded clip."""
    from vidapter.export import ExportError, check_exported, check_inputs, export_onnx, export_torch, preprocessing

    clip = decoded_clip(model, cfg, args.check_video)
    inputs = check_inputs(model, cfg, args.uint8, clip)
    print("preprocessing the program expects:\n" + json.dumps(preprocessing(model, cfg, args.uint8), indent=2))
    written = []
    if args.torch_export:
        written.append(export_torch(model, cfg, args.torch_export, names, uint8=args.uint8))
    if args.onnx:
        written.append(export_onnx(model, cfg, args.onnx, names, uint8=args.uint8, opset=args.opset))
    for path in written:
        diff, peak = check_exported(path, model, cfg, inputs, uint8=args.uint8)
        scale = 1 + peak
        shapes = ", ".join("x".join(map(str, x.shape)) for x in inputs)
        print(f"wrote {path} ({Path(path).stat().st_size / 1e6:.1f} MB); largest logit difference to PyTorch "
              f"{diff:.2e} over inputs {shapes}")  # fmt: skip
        if diff > args.tolerance * scale:
            raise ExportError(f"{path}: logits differ from the model's by {diff:.2e}, above the tolerance "
                              f"{args.tolerance:g} x {scale:.3g}; the file is kept for inspection")  # fmt: skip


def decoded_clip(model, cfg, video: str | None):
    """The test views of ``video``, or of a synthetic clip written and decoded here (the real decoder and
    transform), cut to one view."""
    from vidapter.classifier import file_views

    if video is not None:
        return file_views(model, cfg, video)[:1]
    import numpy as np

    from vidapter.data.synthetic import render_clip, write_mp4

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "check.mp4"
        write_mp4(path, render_clip(0, np.random.default_rng(0), size=64, frames=max(16, cfg.model.num_frames)))
        return file_views(model, cfg, path)[:1]

"""Train-step throughput of the full pipeline (decode + sample + augment + model + optimizer) for a preset.

Writes the synthetic dataset if needed, trains with ``vidapter.engine.fit`` for a few epochs and reports, per
epoch, clips/s and the fraction of wall time the loop waited for data. Writes JSON.

    python benchmarks/data/train_pipeline.py --preset synthetic --epochs 3 --workers 2 --out results.json
    python benchmarks/data/train_pipeline.py --preset k400_vitb16_8f --synthetic-size 224 --batch 8 --workers 12 \\
        --device cuda --amp bf16 --steps 50 --out gpu-results/train_pipeline.json     # GPU: random-weight backbone
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from vidapter.config import apply_overrides  # noqa: E402
from vidapter.data.synthetic import make_synthetic  # noqa: E402
from vidapter.engine import fit  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="synthetic")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, help="optimizer steps per epoch (default: the whole epoch)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none")
    p.add_argument("--compile", default="false", choices=["false", "true", "auto"],
                   help="train.compile (default false: a short run would mostly time the compiler)")  # fmt: skip
    p.add_argument("--synthetic-size", type=int, default=32, help="frame size of the generated videos")
    p.add_argument("--clips-per-class", type=int, default=40)
    p.add_argument("--frames-per-video", type=int, help="length of the generated videos (default: 2 x the model's T)")
    p.add_argument("--data-dir", help="reuse/write the synthetic dataset here (default: a temp dir)")
    p.add_argument("--layout", help="train from the dataset packed in this `vidapter data pack` layout (e.g. sparse)")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    data = Path(args.data_dir or tempfile.mkdtemp(prefix="vidapter-bench-"))
    if not (data / "train.txt").exists():
        t0 = time.perf_counter()
        frames = args.frames_per_video or max(16, 2 * get_preset(args.preset).model.num_frames)
        # the 13 order and appearance classes (those of the published figures; model.num_classes=13 below)
        make_synthetic(data, per_class={"train": args.clips_per_class, "val": 4}, size=args.synthetic_size,
                       frames=frames, classes=list(range(13)))  # fmt: skip
        print(f"wrote synthetic data in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if args.layout:
        from vidapter.data.pack import pack_dataset

        lists = [data / "train.txt", data / "val.txt"]
        m = pack_dataset(lists, data, data / f"packed_{args.layout}", layout=args.layout,
                         short_side=args.synthetic_size, progress=False)  # fmt: skip
        (data / f"packed_{args.layout}" / "classes.txt").write_text((data / "classes.txt").read_text())
        print(f"packed {m['files']} videos ({args.layout}) in {m['last_run_wall_s']} s", file=sys.stderr)
        data = data / f"packed_{args.layout}"
    cfg = get_preset(args.preset)
    size = args.synthetic_size if args.preset == "synthetic" else cfg.data.size
    overrides = [
        f"data.root={data}", f"data.train_list={data / 'train.txt'}", f"data.val_list={data / 'val.txt'}",
        f"data.class_names={data / 'classes.txt'}", f"data.workers={args.workers}", "model.num_classes=13",
        *(["data.format=rawframes"] if args.layout == "jpeg" else []),
        f"train.epochs={args.epochs}", f"train.batch_size={args.batch}", f"train.device={args.device}",
        f"train.amp={args.amp}", f"train.compile={args.compile}", "train.random_init=true", "model.pretrained=none",
        "train.resume=never",
        f"train.run_dir={tempfile.mkdtemp(prefix='vidapter-run-')}", f"data.size={size}",
    ]  # fmt: skip
    if args.steps:
        overrides.append(f"train.max_steps_per_epoch={args.steps}")
    cfg = apply_overrides(cfg, overrides)
    result = fit(cfg)
    rows = [
        {k: h[k] for k in ("epoch", "train_loss", "seconds", "clips_per_s", "data_wait")} for h in result["history"]
    ]
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    write_record(args.out, "train_pipeline", describe_machine(device), preset=args.preset,
                 layout=args.layout or "source", batch=args.batch, workers=args.workers, epochs=rows)  # fmt: skip
    for r in rows:
        print(f"epoch {r['epoch']}: {r['clips_per_s']:.1f} clips/s, data wait {100 * r['data_wait']:.0f}%")


if __name__ == "__main__":
    main()

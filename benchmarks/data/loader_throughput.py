"""How many training clips per second the data loader alone delivers, by number of workers: the feed ceiling of a GPU.

Writes ``--videos`` Kinetics-like videos once (the readers', benchmarks/_core/videos.py: 10 s, 25 fps, 340x256 H.264,
GOP 25, textured moving content), lists them with labels, repeated so that one epoch holds every batch measured, builds
the training dataset of a preset exactly as ``vidapter train`` does (dense 8x16 sampling, PyAV decoding, augmentation,
collation, pinned memory on a GPU machine) and, for each worker count, iterates the loader: the first ``--warmup``
batches start the workers and are not timed, the next ``--batches`` are. No model runs, so the figure is what the CPUs
can feed; compare it with the model's train-step rate (model/vs_baseline.py, model/model_step.py) and the pipeline's
measured wait (train_pipeline.py). (An earlier version listed each video once: an epoch was one batch, the loader
restarted every batch and one worker worked at a time, so its figure did not grow with workers; the
loader_throughput.json in docs/results/h200_2026-11-27_full_suite/ comes from it.)

    python benchmarks/data/loader_throughput.py --workers 1 2 --batches 20 --out docs/results/loader_throughput_cpu.json
    python benchmarks/data/loader_throughput.py --workers 8 15 --batches 40 --out gpu-results/loader_throughput.json
    python benchmarks/data/loader_throughput.py --layout sparse --workers 4 8 15 --batches 40 --out loader_sparse.json

``--layout`` packs the videos first (``vidapter data pack``) and reads the packed copies.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.videos import make_videos  # noqa: E402
from vidapter.config import apply_overrides  # noqa: E402
from vidapter.data.build import build_dataset  # noqa: E402
from vidapter.data.loader import build_loader  # noqa: E402
from vidapter.data.pack import pack_tree, packed_path  # noqa: E402
from vidapter.models.vit import BACKBONES  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--workers", type=int, nargs="+", default=[2])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=30, help="timed batches per worker count")
    p.add_argument("--warmup", type=int, default=None, help="untimed batches first (default: one per worker)")
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--data-dir", help="reuse/write the videos here (default: a temp dir)")
    p.add_argument("--layout", help="read the videos packed in this `vidapter data pack` layout (e.g. sparse)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    cfg = get_preset(args.preset)
    data = Path(args.data_dir or tempfile.mkdtemp(prefix="vidapter-loader-"))
    t0 = time.perf_counter()
    files = make_videos(data, args.videos, [25], crf=23)[25]
    if args.layout:  # the same videos, packed; the list below then points into the packed folder
        packed = data / f"packed_{args.layout}"
        entries = pack_tree([f.name for f in files], files[0].parent, packed / files[0].parent.name,
                            layout=args.layout, progress=False)  # fmt: skip
        if any("error" in e for e in entries.values()):
            raise SystemExit(f"packing failed: {entries}")
        files = [packed / files[0].parent.name / packed_path(f.name, args.layout) for f in files]
        data = packed
    print(f"videos ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    # one epoch must hold every batch measured: with fewer clips than that, each epoch ends after a batch or two and
    # the loader restarts its pipeline every time (one worker busy at a time, whatever their number); the list
    # repeats the videos instead (the page cache holds them, as it would a real dataset's hot files)
    clips = max(len(files), args.batch * (max(args.workers) + args.batches + 1))
    frames = "" if args.layout != "jpeg" else f" {10 * 25}"  # rawframes lists: dir num_frames label
    lines = (f"{files[i % len(files)].relative_to(data)}{frames} {i % 13}\n" for i in range(clips))
    (data / "train.txt").write_text("".join(lines))
    fmt = ["data.format=rawframes"] if args.layout == "jpeg" else []
    cfg = apply_overrides(cfg, [f"data.root={data}", f"data.train_list={data / 'train.txt'}", "model.num_classes=13",
                                *fmt])  # fmt: skip
    facts = BACKBONES[cfg.model.backbone]
    dataset, _ = build_dataset(cfg.data, "train", num_frames=cfg.model.num_frames, num_classes=13, mean=facts.mean,
                               std=facts.std)  # fmt: skip
    rows = []
    for workers in args.workers:
        loader = build_loader(dataset, args.batch, train=True, workers=workers, seed=0)
        warmup = workers if args.warmup is None else args.warmup
        needed, seen = warmup + args.batches, 0
        start = time.perf_counter() if warmup == 0 else None
        loader.sampler.set_epoch(0)
        for batch in loader:  # one epoch holds them all (above)
            seen, shape = seen + 1, list(batch["video"].shape[1:])
            if seen == warmup:
                start = time.perf_counter()
            if seen == needed:
                break
        assert seen == needed, f"the epoch ended after {seen} of {needed} batches"
        seconds = time.perf_counter() - start
        rows.append({"workers": workers, "clips_per_s": args.batches * args.batch / seconds, "seconds": seconds,
                     "clip_shape": shape})  # fmt: skip
        print(f"{workers:>3} workers: {rows[-1]['clips_per_s']:7.1f} clips/s", flush=True)
        del loader
    device = "cuda" if torch.cuda.is_available() else "cpu"
    write_record(args.out, "loader_throughput", describe_machine(device), preset=args.preset,
                 cpu_count=os.cpu_count(), batch=args.batch, batches=args.batches, videos=args.videos,
                 layout=args.layout or "source (GOP 25)", normalize=cfg.data.normalize, rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

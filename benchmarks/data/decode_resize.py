"""Resizing in the decoder vs after it: clips per CPU-second of PyAV decode + train augmentation, by source size.

For each source size (synthetic H.264, GOP 25, the moving-blob videos of benchmarks/_core/videos.py), each video is read
with the dense 8x16 training pattern twice per repeat: (a) the default path, frames decoded and converted to RGB at full
size, then ``train_transform`` (Resize short side 256, RandomResizedCrop 224, flip, normalise); (b) ``decode_resize``,
the reader scales to short side 256 inside the colour conversion (swscale, area averaging), so the transform's Resize is
a no-op. Also the mean absolute pixel difference between the two 256-short-side frames (0-255 scale). One process, one
torch thread, interleaved repeats, median.
    python benchmarks/data/decode_resize.py --sizes 256 480 720 1080 --out docs/results/decode_resize_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.videos import FPS, render  # noqa: E402
from vidapter.data.decode import open_video  # noqa: E402
from vidapter.data.sampling import dense  # noqa: E402
from vidapter.data.synthetic import write_mp4  # noqa: E402
from vidapter.data.transforms import train_transform  # noqa: E402
from vidapter.models.vit import CLIP_MEAN, CLIP_STD  # noqa: E402

SHORT = 256


def one_pass(files: list[Path], short_side: int | None, seed: int) -> tuple[float, int]:
    """CPU-seconds for decode + augment of one dense 8x16 clip per file."""
    sampler, transform = dense(8, 16, 1), train_transform(CLIP_MEAN, CLIP_STD, size=224, short_side=SHORT)
    start = time.process_time()
    for i, f in enumerate(files):
        rng = np.random.default_rng([seed, i])
        with open_video(f, short_side=short_side) as video:
            idx = sampler(video.num_frames, True, rng).reshape(-1).tolist()
            frames = torch.from_numpy(video.get(idx))
        torch.manual_seed(i)
        transform(frames)
    return time.process_time() - start, len(files)


def pixel_difference(files: list[Path]) -> float:
    resize = v2.Resize(SHORT, antialias=True)
    diffs = []
    for f in files:
        with open_video(f) as full, open_video(f, short_side=SHORT) as small:
            idx = list(range(0, full.num_frames, 25))
            ref = resize(torch.from_numpy(full.get(idx)).permute(0, 3, 1, 2)).float()
            out = torch.from_numpy(small.get(idx)).permute(0, 3, 1, 2).float()
        diffs.append((ref - out).abs().mean().item())
    return float(np.mean(diffs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 480, 720, 1080], help="source heights (16:9 wide)")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="vidapter-resize-"))
    rows = []
    for height in args.sizes:
        width = int(round(height * 16 / 9 / 2)) * 2
        files = []
        for i in range(args.videos):
            files.append(root / f"{height}p_{i}.mp4")
            write_mp4(files[-1], render(2000 + i, height, width, FPS * args.seconds), fps=FPS, crf=23, gop=25)
        runs: dict[str, list[float]] = {"decode_then_resize": [], "decode_resize": []}
        for r in range(args.repeats):
            for name, short in (("decode_then_resize", None), ("decode_resize", SHORT)):
                sec, n = one_pass(files, short, seed=r)
                runs[name].append(n / sec)
        row = {"source": f"{width}x{height}", **{k: statistics.median(v) for k, v in runs.items()}}
        row["speedup"] = row["decode_resize"] / row["decode_then_resize"]
        row["mean_abs_pixel_diff"] = pixel_difference(files)
        row["runs"] = runs
        rows.append(row)
        print(f"{row['source']:>10}: decode then resize {row['decode_then_resize']:6.1f} clips/CPU-s, resize in "
              f"decoder {row['decode_resize']:6.1f} ({row['speedup']:.2f}x), "
              f"pixel diff {row['mean_abs_pixel_diff']:.2f}", flush=True)  # fmt: skip
    write_record(args.out, "decode_resize", describe_machine("cpu, 1 torch thread"), rows=rows)


if __name__ == "__main__":
    main()

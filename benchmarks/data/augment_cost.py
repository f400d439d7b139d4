"""CPU cost of the clip augmentations the SSv2 recipes choose between, and of ``import vidapter``, in one process.

RandAugment(4, 7) on uint8 clips of 8 frames at 224 x 224 (what the SSv2 recipes augment after the crop): imgaug's,
as vidapter ports it (``data.randaugment_impl=imgaug``, the default), and torchvision's (``torchvision``), one torch
thread, ms per clip over ``--clips`` clips after a warm-up; and the wall time of ``import vidapter`` in a fresh
interpreter (the package loads its modules on first use).

    python benchmarks/augment_cost.py --out docs/results/augment_cost_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from vidapter.data.randaugment import ImgaugRandAugment


def per_clip_ms(aug, clip, n: int) -> float:
    for _ in range(3):
        aug(clip)
    start = time.perf_counter()
    for _ in range(n):
        aug(clip)
    return 1000 * (time.perf_counter() - start) / n


def import_ms(repeats: int = 5) -> float:
    code = "import time; t = time.perf_counter(); import vidapter; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]  # fmt: skip
    return 1000 * sorted(runs)[len(runs) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=50)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    clip = tv_tensors.Video(torch.randint(0, 256, (8, 3, 224, 224), dtype=torch.uint8))
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },  # fmt: skip
        "randaugment_ms_per_clip": {
            "imgaug": per_clip_ms(ImgaugRandAugment(4, 7), clip, args.clips),
            "torchvision": per_clip_ms(v2.RandAugment(num_ops=4, magnitude=7), clip, args.clips),
        },
        "import_vidapter_ms": import_ms(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

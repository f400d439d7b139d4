"""CPU cost of the clip augmentations the SSv2 recipes choose between, and of ``import vidapter``, in one process.

RandAugment(4, 7) on uint8 clips of 8 frames at 224 x 224 (what the SSv2 recipes augment after the crop): imgaug's,
as vidapter ports it (``data.randaugment_impl=imgaug``, the default), and torchvision's (``torchvision``), one torch
thread, ms per clip over ``--clips`` clips after a warm-up; and the wall time of ``import vidapter`` in a fresh
interpreter (the package loads its modules on first use).

    python benchmarks/data/augment_cost.py --out docs/results/augment_cost_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import seconds_per_call  # noqa: E402
from vidapter.data.randaugment import ImgaugRandAugment  # noqa: E402


def per_clip_ms(aug, clip, n: int) -> float:
    """Mean ms per clip over ``n`` calls, after 3."""
    return 1000 * seconds_per_call(lambda: aug(clip), "cpu", 3, n)


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
        "randaugment_ms_per_clip": {
            "imgaug": per_clip_ms(ImgaugRandAugment(4, 7), clip, args.clips),
            "torchvision": per_clip_ms(v2.RandAugment(num_ops=4, magnitude=7), clip, args.clips),
        },
        "import_vidapter_ms": import_ms(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        machine = describe_machine("cpu, 1 torch thread", cpu=platform.processor() or platform.machine())
        write_record(args.out, "augment_cost", machine, **result)


if __name__ == "__main__":
    main()

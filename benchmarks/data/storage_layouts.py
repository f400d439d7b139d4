"""Training-ready storage: clips per CPU-second and bytes per hour of each ``vidapter data pack`` layout, side by side
with the sources as they are, in one process.

Sources: the readers' videos (benchmarks/_core/videos.py: 10 s, 25 fps, 340x256 H.264 from libx264 veryfast crf 23; GOP
250 = x264's default, as a plain resize writes them, and GOP 25). Each layout is packed from the GOP-250 sources at
every ``--sizes`` short side (``pack_tree``, every core). Then, one thread, for every (storage, pattern), repeats
interleaved across storages, median reported:

- ``decode``: open, sample (rng seeded per video: every storage reads the same frame indices), decode;
- ``float``: decode + the clip transform ending in float normalisation in the worker (how clips were delivered before
  ``data.normalize=step``);
- ``uint8``: decode + the same transform ending in uint8 (normalisation moved to the training step on the GPU).

Patterns: K400 training (dense 8x16, RandomResizedCrop 224, flip), SSv2 training (uniform 8 segments, the same
augmentation) and the 3-clip test pattern (dense 8x16 x 3 clips, short side 224, centre crop; 3 clips per video). The
naive reader (decode every frame to RGB, then index) runs on the test pattern for the ratio quoted there. Storage:
bytes per hour of video, ratio to the sources, the full Kinetics-400 (train + val, 266,442 clips of 10 s = 740 h)
at that rate, packing CPU-seconds per hour of video, and PSNR of the 256-px layouts against the decoded sources.

    python benchmarks/data/storage_layouts.py --videos 12 --repeats 3 --out docs/results/storage_layouts_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, video_libraries, write_record  # noqa: E402
from benchmarks._core.videos import PATTERNS, SECONDS, make_videos, timed_pass  # noqa: E402
from vidapter.data.decode import FrameFolder, open_video, read_all_naive  # noqa: E402
from vidapter.data.pack import LAYOUTS, pack_tree, packed_path  # noqa: E402
from vidapter.data.transforms import MultiViewTransform, train_transform  # noqa: E402
from vidapter.models.vit import CLIP_MEAN, CLIP_STD  # noqa: E402

K400_HOURS = 266_442 * 10 / 3600


def transform(train: bool, normalize: bool):
    if train:
        return train_transform(CLIP_MEAN, CLIP_STD, size=224, short_side=256, normalize=normalize)
    return MultiViewTransform(CLIP_MEAN, CLIP_STD, size=224, short_side=224, crops=1, normalize=normalize)


def one_pass(storage: dict, pattern: str, mode: str, seed: int) -> dict:
    sampler, train = PATTERNS[pattern]
    tf = None if mode == "decode" else transform(train, normalize=mode == "float")

    def opener(i, path):
        frames = storage.get("frames")  # frame counts: frame folders only
        return None if storage["reader"] == "naive" else open_storage(storage["reader"], path, frames and frames[i])

    return timed_pass(storage["files"], sampler, train, tf, seed, opener)


def open_storage(reader: str, path: Path, frames: int | None):
    return FrameFolder(path, frames) if reader == "jpeg" else open_video(path)


def psnr(a_files: list[Path], b_files: list[Path], b_frames: list[int], reader: str) -> float:
    """PSNR (dB, all frames of the first two videos) of b against the decoded a."""
    mse = []
    for a, b, n in zip(a_files[:2], b_files[:2], b_frames[:2], strict=False):
        ref = read_all_naive(a).astype(np.float32)
        with open_storage(reader, b, n) as v:
            got = v.get(list(range(v.num_frames))).astype(np.float32)
        mse.append(float(((ref - got) ** 2).mean()))
    return 10 * np.log10(255**2 / statistics.mean(mse))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 224])
    p.add_argument("--layouts", nargs="+", default=["sparse", "gop8", "gop16", "intra", "jpeg"], choices=list(LAYOUTS))
    p.add_argument("--patterns", nargs="+", default=list(PATTERNS), choices=list(PATTERNS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--crf", type=int, default=23, help="of the sources and of the H.264 layouts")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the jpeg layout")
    p.add_argument("--sparse-crfs", type=int, nargs="*", default=[18],
                   help="also pack the sparse layout at these crf values (first size only)")  # fmt: skip
    p.add_argument("--cache-dir", help="keep sources and packed copies here (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(1)
    result = dict(args=vars(args), storage={}, records=[])
    with contextlib.ExitStack() as stack:
        root = Path(args.cache_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="vidapter_layouts_")))
        sources = make_videos(root, args.videos, [250, 25], args.crf)
        src_root = sources[250][0].parent
        rels = [f.name for f in sources[250]]
        hours = args.videos * SECONDS / 3600
        src_bytes = {g: sum(f.stat().st_size for f in fs) for g, fs in sources.items()}
        storages = {f"source_gop{g}": dict(reader="pyav", files=fs) for g, fs in sources.items()}
        for g in sources:
            result["storage"][f"source_gop{g}"] = dict(bytes_per_hour=src_bytes[g] / hours, ratio_to_source=src_bytes[g]
                                                       / src_bytes[250])  # fmt: skip
        configs = [(layout, size, args.crf) for size in args.sizes for layout in args.layouts]
        configs += [("sparse", args.sizes[0], crf) for crf in args.sparse_crfs if crf != args.crf]
        for layout, size, crf in configs:
            name = f"{layout}_{size}" + (f"_crf{crf}" if crf != args.crf else "")
            dst = root / "packed" / f"{layout}_{size}_crf{crf}_q{args.quality}"
            t0 = time.perf_counter()
            entries = pack_tree(rels, src_root, dst, layout=layout, short_side=size, crf=crf,
                                quality=args.quality, progress=False)  # fmt: skip
            bad = {k: e["error"] for k, e in entries.items() if "error" in e}
            if bad:
                raise SystemExit(f"{name}: packing failed: {bad}")
            files = [dst / packed_path(r, layout) for r in rels]
            total = sum(e["bytes"] for e in entries.values())
            cpu = [e.get("cpu_s") for e in entries.values()]
            storages[name] = dict(reader="jpeg" if layout == "jpeg" else "pyav", files=files,
                                  frames=[entries[r]["frames"] for r in rels])  # fmt: skip
            result["storage"][name] = dict(
                layout=layout, short_side=size, crf=crf, bytes_per_hour=total / hours,
                ratio_to_source=total / src_bytes[250],
                ratio_to_source_gop25=total / src_bytes[25], k400_gb=total / hours * K400_HOURS / 1e9,
                pack_cpu_s_per_hour=sum(cpu) / hours if None not in cpu else None,
                pack_wall_s=time.perf_counter() - t0,
                psnr_vs_source_db=psnr(sources[250], files, storages[name]["frames"], storages[name]["reader"])
                if size == 256 else None,
            )  # fmt: skip
            s = result["storage"][name]
            print(
                f"{name:<12} {s['bytes_per_hour'] / 1e6:8.1f} MB/h  {s['ratio_to_source']:5.2f}x source  "
                f"K400 {s['k400_gb']:7.1f} GB  psnr {s['psnr_vs_source_db'] or float('nan'):.2f}",
                flush=True,
            )
        result["storage"]["source_gop250"]["k400_gb"] = src_bytes[250] / hours * K400_HOURS / 1e9
        for st in storages.values():  # warm-up: imports, page cache
            one_pass(st | dict(files=st["files"][:1]), args.patterns[0], "uint8", args.seed)
        for pattern in args.patterns:
            runs: dict[tuple[str, str], list[dict]] = {}
            cases = [(n, m) for n in storages for m in ("decode", "float", "uint8")]
            if pattern == "dense8x16_test3":
                naive = dict(reader="naive", files=sources[250])
                cases += [("naive_gop250", m) for m in ("decode", "float")]
            for _ in range(args.repeats):
                for name, mode in cases:
                    st = naive if name == "naive_gop250" else storages[name]
                    runs.setdefault((name, mode), []).append(one_pass(st, pattern, mode, args.seed))
            for (name, mode), rs in runs.items():
                med = statistics.median(r["clips_per_cpu_s"] for r in rs)
                result["records"].append(dict(storage=name, pattern=pattern, mode=mode, clips_per_cpu_s=med,
                                              clips_per_wall_s=statistics.median(r["clips_per_wall_s"] for r in rs),
                                              runs=rs))  # fmt: skip
            rate = {
                (r["storage"], r["mode"]): r["clips_per_cpu_s"] for r in result["records"] if r["pattern"] == pattern
            }
            print(f"\n{pattern}: clips per CPU-second (decode / +augment float / +augment uint8), ratio to GOP-250 "
                  "source with float", flush=True)  # fmt: skip
            base = rate["source_gop250", "float"]
            for name in [*storages, *(["naive_gop250"] if pattern == "dense8x16_test3" else [])]:
                d, f, u = (rate.get((name, m), float("nan")) for m in ("decode", "float", "uint8"))
                print(f"  {name:<14} {d:7.1f} {f:7.1f} {u:7.1f}   {f / base:5.2f}x {u / base:5.2f}x", flush=True)
    if args.out:
        write_record(args.out, "storage_layouts", describe_machine("cpu", **video_libraries()), **result)


if __name__ == "__main__":
    main()

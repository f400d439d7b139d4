"""Video readers: clips per CPU-second of each reader x sampling pattern, decode and decode + augment.

Writes ``--videos`` synthetic 10 s 340x256 25 fps H.264 videos (benchmarks/_core/videos.py: Gaussian blobs bouncing over
a panning textured gradient, plus sensor noise) once per GOP setting; then, in one process with one torch thread, for
each reader (naive = decode every frame with PyAV and index; pyav; decord; torchcodec) and sampling pattern: open each
video, sample indices (rng seeded per video: every reader reads the same frames), decode; and in a second pass decode +
``train_transform`` (short side 256, RandomResizedCrop 224, flip, normalise) per clip. CPU-seconds =
``time.process_time()`` (all threads of the process); wall clips/s too. Repeats run readers interleaved; the median is
reported. ``--color-jitter B C S H`` adds a third pass, decode + ``train_transform`` with that colour jitter (the
K400/K700 ViT-L recipes').

    python benchmarks/data/readers.py --videos 12 --repeats 3 --out docs/results/data_throughput_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import DOCS, describe_machine, video_libraries, write_record  # noqa: E402
from benchmarks._core.videos import FPS, PATTERNS, SECONDS, H, W, make_videos, timed_pass  # noqa: E402
from vidapter.data.decode import open_video  # noqa: E402
from vidapter.data.transforms import train_transform  # noqa: E402
from vidapter.models.vit import CLIP_MEAN, CLIP_STD  # noqa: E402

READERS = ["naive", "pyav", "decord", "torchcodec"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=int, default=12, help="videos per GOP setting")
    p.add_argument("--gops", type=int, nargs="+", default=[250, 25])
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--readers", nargs="+", default=READERS, choices=READERS)
    p.add_argument("--patterns", nargs="+", default=list(PATTERNS), choices=list(PATTERNS))
    p.add_argument("--repeats", type=int, default=1, help="timed passes per case; the median is reported")
    p.add_argument("--color-jitter", type=float, nargs=4, default=None, metavar=("B", "C", "S", "H"))
    gpu_help = "GPU train clips/s to feed, used when docs/benchmarks.md links no CUDA model_step result"
    p.add_argument("--gpu-clips-per-s", type=float, nargs="+", default=[100, 300, 1000], help=gpu_help)
    p.add_argument("--cache-dir", default=None, help="keep the generated videos here (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the JSON results here")
    return p.parse_args()


def file_stats(files: list[Path]) -> dict:
    import av

    keys = []
    for p in files:
        with av.open(str(p)) as c:
            keys.append(sum(pk.is_keyframe for pk in c.demux(video=0) if pk.size))
    kbps = [p.stat().st_size * 8 / 1000 / SECONDS for p in files]
    return {"videos": len(files), "mean_kbps": statistics.mean(kbps), "keyframes_per_video": statistics.mean(keys)}


def one_pass(reader: str, files: list[Path], pattern: str, augment: bool, seed: int, jitter=None) -> dict:
    sampler, train = PATTERNS[pattern]
    tf = train_transform(CLIP_MEAN, CLIP_STD, size=224, short_side=256, color_jitter=jitter) if augment else None
    return timed_pass(
        files, sampler, train, tf, seed, lambda i, p: None if reader == "naive" else open_video(p, reader)
    )


def measure(readers: list[str], files: list[Path], pattern: str, args) -> dict:
    """{(reader, augment): summary}; repeats are the outer loop so that drift on a shared machine hits all readers."""
    modes = (False, True, "jitter") if args.color_jitter else (False, True)
    runs = {(r, a): [] for r in readers for a in modes}
    for _ in range(args.repeats):
        for reader, augment in runs:
            jitter = tuple(args.color_jitter) if augment == "jitter" else None
            runs[reader, augment].append(one_pass(reader, files, pattern, bool(augment), args.seed, jitter))
    keys = ("clips_per_cpu_s", "clips_per_wall_s")
    med = {k: {m: statistics.median(r[m] for r in v) for m in keys} for k, v in runs.items()}
    return {k: med[k] | {"clips": v[0]["clips"], "runs": v} for k, v in runs.items()}


def gpu_targets(args) -> tuple[list[dict], str]:
    """Train-step clips/s of CUDA model_step results linked from docs/benchmarks.md (T=8), else --gpu-clips-per-s."""
    doc = DOCS / "benchmarks.md"
    links = set(re.findall(r"\((results/model_step[^)\s]*\.json)\)", doc.read_text() if doc.exists() else ""))
    found = []
    for rel in sorted(links):
        with contextlib.suppress(OSError, ValueError):
            res = json.loads((doc.parent / rel).read_text())
            if res.get("machine", {}).get("device") == "cuda":
                recs = [
                    r for r in res["records"] if r.get("frames") == 8 and isinstance(r.get("train_clips_per_s"), float)
                ]
                found += [dict(clips_per_s=r["train_clips_per_s"], source=f"{rel} B={r['batch']}") for r in recs]
    if found:
        return found, "docs/benchmarks.md (CUDA model_step train-step results, T=8)"
    note = "--gpu-clips-per-s (no CUDA model_step result linked from docs/benchmarks.md: GPU rates not yet measured)"
    return [dict(clips_per_s=t, source="--gpu-clips-per-s") for t in args.gpu_clips_per_s], note


def summarise(result: dict, args) -> None:
    """Ratios pyav/decord and pyav/naive per (GOP, pattern, measure), and cores per GPU for the training patterns."""
    measures = ("decode", "decode_augment")
    rate = {
        (r["gop"], r["pattern"], r["reader"], m): r[m]["clips_per_cpu_s"] for r in result["records"] for m in measures
    }
    result["ratios"], result["cores_per_gpu"] = [], []
    targets, result["gpu_targets_source"] = gpu_targets(args)
    print("\nclips/CPU-s ratios pyav/decord, pyav/naive (goal: pyav >= decord and >= 3x naive)")
    for gop in args.gops:
        for pattern in args.patterns:
            for m in measures:
                pv, dv, nv = (rate.get((gop, pattern, r, m)) for r in ("pyav", "decord", "naive"))
                if None in (pv, dv, nv):
                    continue
                row = dict(gop=gop, pattern=pattern, measure=m, pyav_over_decord=pv / dv, pyav_over_naive=pv / nv)
                met = pv >= dv and pv >= 3 * nv
                result["ratios"].append(row | dict(goal_met=met))
                print(f"  GOP {gop:>3} {pattern:<16} {m:<14} {pv / dv:5.2f} {pv / nv:6.2f}  {'' if met else 'NOT '}met")
            pv = rate.get((gop, pattern, "pyav", "decode_augment"))
            for t in targets if pv and PATTERNS[pattern][1] else []:
                c = dict(gop=gop, pattern=pattern, pyav_decode_augment_clips_per_cpu_s=pv, cores=t["clips_per_s"] / pv)
                result["cores_per_gpu"].append(c | dict(gpu_clips_per_s=t["clips_per_s"], target_source=t["source"]))
    print(f"\ncores to feed one GPU (pyav decode+augment; targets from {result['gpu_targets_source']})")
    for c in result["cores_per_gpu"]:
        print(f"  GOP {c['gop']:>3} {c['pattern']:<16} {c['gpu_clips_per_s']:>7.0f} clips/s -> {c['cores']:6.1f} cores")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    video = dict(width=W, height=H, fps=FPS, frames=FPS * SECONDS, codec="h264 libx264 veryfast", crf=args.crf)
    result = dict(args=vars(args), video=video, files={}, unavailable={}, records=[])
    with contextlib.ExitStack() as stack:
        root = Path(args.cache_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="vidapter_bench_")))
        t0 = time.perf_counter()
        files = make_videos(root, args.videos, args.gops, args.crf)
        print(f"videos ready in {time.perf_counter() - t0:.0f} s under {root}", flush=True)
        readers = []
        for reader in args.readers:  # warm-up: imports and library init, outside the timed passes
            try:
                one_pass(reader, files[args.gops[0]][:1], args.patterns[0], True, args.seed)
                readers.append(reader)
            except Exception as e:  # e.g. torchcodec without FFmpeg libs
                result["unavailable"][reader] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                print(f"{reader}: unavailable ({result['unavailable'][reader]})", flush=True)
        print(f"{'GOP':>4} {'pattern':<16} {'reader':<11} clips/CPU-s: dec  dec+aug  wall: dec dec+aug")
        for gop in args.gops:
            result["files"][str(gop)] = file_stats(files[gop])
            for pattern in args.patterns:
                res = measure(readers, files[gop], pattern, args)
                for reader in readers:
                    dec, aug = res[reader, False], res[reader, True]
                    rec = dict(gop=gop, pattern=pattern, reader=reader)
                    result["records"].append(rec | dict(decode=dec, decode_augment=aug))
                    if (reader, "jitter") in res:
                        result["records"][-1]["decode_augment_jitter"] = jit = res[reader, "jitter"]
                        print(f"{'':>21} {reader:<11} with colour jitter: {jit['clips_per_cpu_s']:.1f} clips/CPU-s")
                    cpu = f"{dec['clips_per_cpu_s']:>16.1f} {aug['clips_per_cpu_s']:>8.1f}"
                    wall = f"{dec['clips_per_wall_s']:>10.1f} {aug['clips_per_wall_s']:>7.1f}"
                    print(f"{gop:>4} {pattern:<16} {reader:<11} {cpu} {wall}", flush=True)
    summarise(result, args)
    if args.out:
        write_record(args.out, "data_throughput", describe_machine("cpu", **video_libraries()), **result)


if __name__ == "__main__":
    main()

"""How many cores a machine really gives: the same CPU work in 1, 2, 4, ... processes at once, aggregate rate.

Two kinds of work, each process doing a fixed amount: PyAV decoding every frame of one Kinetics-like video (the
readers', benchmarks/_core/videos.py: 10 s, 25 fps, 340x256 H.264; single-threaded decoder, as in a loader worker) and
SHA-256 over an in-memory buffer (no I/O, no library threads). ``effective_cores`` = aggregate rate / one process's
rate; on a machine whose listed cores are all real it follows the process count up to ``os.cpu_count()``. Explains a
loader that stops scaling with workers (benchmarks/data/loader_throughput.py).

    python benchmarks/data/cpu_scaling.py --procs 1 2 4 8 16 --out gpu-results/cpu_scaling.json
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.videos import make_videos  # noqa: E402


def decode(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.codec_context.thread_count = "SLICE", 1
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)


def sha(megabytes: int) -> int:
    hashlib.sha256(bytes(megabytes << 20)).digest()
    return megabytes


def job(args: tuple[str, str, int]) -> tuple[int, float]:
    kind, path, repeats = args
    start = time.perf_counter()
    units = sum(decode(path) if kind == "decode" else sha(64) for _ in range(repeats))
    return units, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--repeats", type=int, default=2, help="units of work per process")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    video = make_videos(Path(tempfile.mkdtemp(prefix="vidapter-cpu-")), 1, [25], crf=23)[25][0]
    rows = []
    for kind, unit in (("decode", "frames"), ("sha256", "MiB")):
        single = None
        for n in args.procs:
            with mp.get_context("fork").Pool(n) as pool:
                start = time.perf_counter()
                done = pool.map(job, [(kind, str(video), args.repeats)] * n)
                wall = time.perf_counter() - start
            rate = sum(u for u, _ in done) / wall
            single = single or rate / n
            rows.append({"work": kind, "procs": n, f"{unit}_per_s": rate, "wall_s": wall,
                         "effective_cores": rate / single})  # fmt: skip
            print(f"{kind:<7} {n:>3} procs: {rate:9.1f} {unit}/s, {rate / single:5.2f} effective cores", flush=True)
    write_record(args.out, "cpu_scaling", describe_machine("cpu"), cpu_count=os.cpu_count(),
                 affinity=len(os.sched_getaffinity(0)), rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

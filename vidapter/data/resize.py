"""Re-encode videos once at a smaller short side (256 px, as the reference datasets were prepared).

Decoding cost grows with pixels: feeding a GPU from 720p sources takes several times the CPU of 256p sources.
Frames are kept one for one (same count and order; timestamps become constant-rate at the average frame rate),
encoded with libx264 (crf 18, yuv420p). The short side is set exactly; the long side keeps the aspect, rounded to even.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from fractions import Fraction
from pathlib import Path

from vidapter.data.decode import VideoError


def resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    w, h = round(width * scale / 2) * 2, round(height * scale / 2) * 2
    return (short_side, h) if width <= height else (w, short_side)


def resize_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 256, crf: int = 18) -> int:
    """Write ``src`` re-encoded at ``short_side`` to ``dst`` (via a temporary file); returns the frame count."""
    import av

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part{dst.suffix}")
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
            s_in = inp.streams.video[0]
            s_in.thread_count = 1
            rate = s_in.average_rate or s_in.guessed_rate or Fraction(25)
            w, h = resized_shape(s_in.codec_context.width, s_in.codec_context.height, short_side)
            s_out = out.add_stream("libx264", rate=rate)
            s_out.width, s_out.height, s_out.pix_fmt = w, h, "yuv420p"
            s_out.options = {"crf": str(crf), "preset": "veryfast"}
            s_out.thread_count = 1
            n = 0
            for frame in inp.decode(s_in):
                small = frame.reformat(width=w, height=h, format="yuv420p")
                small.pts, small.time_base = n, Fraction(1) / rate
                out.mux(s_out.encode(small))
                n += 1
            out.mux(s_out.encode())
        os.replace(tmp, dst)
        return n
    except (av.FFmpegError, IndexError) as e:
        tmp.unlink(missing_ok=True)
        raise VideoError(src, f"cannot re-encode ({type(e).__name__}: {getattr(e, 'strerror', None) or e})") from e


def _one(job: tuple) -> tuple[str, str | None]:
    src, dst, short_side = job
    try:
        resize_video(src, dst, short_side)
        return src, None
    except VideoError as e:
        return src, e.reason


def resize_tree(
    rel_paths: list[str], src_root: str | os.PathLike, dst_root: str | os.PathLike, *, short_side: int = 256,
    workers: int | None = None, progress: bool = True,
) -> dict[str, str]:  # fmt: skip
    """Re-encode every ``src_root/rel`` to ``dst_root/rel`` (extension kept as .mp4 container) in parallel.
    Existing outputs are skipped, so an interrupted run resumes. Returns {path: reason} of the failures."""
    jobs = []
    for rel in dict.fromkeys(rel_paths):
        dst = Path(dst_root) / rel
        if not dst.exists():
            jobs.append((str(Path(src_root) / rel), str(dst), short_side))
    failed: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        futures = [pool.submit(_one, j) for j in jobs]
        for done, fut in enumerate(as_completed(futures), 1):
            src, reason = fut.result()
            if reason:
                failed[src] = reason
            if progress:
                print(f"\rresized {done}/{len(jobs)}  failed {len(failed)}", end="", file=sys.stderr, flush=True)
    if progress and jobs:
        print(file=sys.stderr)
    return failed

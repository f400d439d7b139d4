"""``vidapter data check``: read every video of an annotation list in parallel and report the unreadable ones."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from vidapter.data.datasets import Sample
from vidapter.data.decode import FrameFolder, VideoError, verify_video
from vidapter.files import write_text


def _check_one(sample: Sample, backend: str, template: str) -> tuple[str, str | None]:
    try:
        if sample.num_frames is not None:
            with FrameFolder(sample.path, sample.num_frames, template) as f:
                f.get(list(range(sample.num_frames)))
        else:
            verify_video(sample.path, backend)
        return sample.path, None
    except VideoError as e:
        return sample.path, e.reason
    except Exception as e:  # a decoder crash on a hostile file is a finding, not a reason to stop checking
        return sample.path, f"{type(e).__name__}: {e}"


def check_samples(
    samples: list[Sample],
    *,
    workers: int | None = None,
    backend: str = "pyav",
    template: str = "img_{:05d}.jpg",
    progress: bool = True,
) -> dict[str, str]:
    """{path: reason} for every sample that cannot be fully decoded; a progress line on stderr."""
    bad: dict[str, str] = {}
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        futures = [pool.submit(_check_one, s, backend, template) for s in samples]
        for done, fut in enumerate(as_completed(futures), 1):
            path, reason = fut.result()
            if reason is not None:
                bad[path] = reason
            if progress and (done == len(futures) or done % 50 == 0):
                rate = done / max(time.monotonic() - start, 1e-9)
                print(f"\rchecked {done}/{len(futures)}  unreadable {len(bad)}  {rate:.0f} videos/s", end="",
                      file=sys.stderr, flush=True)  # fmt: skip
    if progress:
        print(file=sys.stderr)
    return dict(sorted(bad.items()))


def write_report(bad: dict[str, str], total: int, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({"checked": total, "unreadable": len(bad), "files": bad}, indent=2) + "\n")
    return path

"""Training-ready storage: rewrite a dataset's videos once so that a clip's frames are cheap to reach.

A training clip needs 8-16 frames spread over 2-5 s of video. In a long-GOP H.264 file (what most datasets ship, and
what a plain resize writes) the decoder has to decode most of that span to hand over those frames; decoding, not
augmentation, is most of a loader worker's time. ``pack_tree`` re-encodes every listed video into one of these
layouts, keeping the relative paths (a packed video folder is a drop-in ``data.root``):

- ``sparse`` (the default): H.264 where every anchor frame is followed by 16 B-frames that no other frame references
  (x264 ``bframes=16:b-adapt=0:b-pyramid=none:scenecut=0``; without the last, x264 turns B-frames into P-frames
  where it sees a large change), decoded with CAVLC and without the deblocking filter (x264 ``--tune fastdecode``),
  and ``mbtree=0`` (macroblock-tree rate control would starve the unreferenced frames of bits: smaller files with
  it off and +0.9 dB on the benchmark's videos). The reader tells the decoder to drop unreferenced frames nobody
  asked for, so reaching a frame costs the anchors before it (one in 17 frames) instead of every frame.
- ``gop8`` / ``gop16``: a keyframe every 8 / 16 frames, no B-frames: a frame costs at most 7 / 15 earlier ones.
- ``intra``: every frame a keyframe (H.264 all-intra): a frame costs itself.
- ``jpeg``: a folder of JPEG frames per video (MMAction2's rawframes, ``img_00001.jpg``...), read with libjpeg-turbo.
- ``h264``: x264's defaults (long GOP, 3 B-frames), what ``vidapter data prepare --resize-short`` writes.

Frames are kept one for one (same count and order; timestamps become constant-rate at the average frame rate), scaled
so that the short side is exactly ``short_side`` (area averaging; the long side keeps the aspect, rounded to even) and
turned upright when the source carries rotation metadata. The decode cost, storage and quality of each layout are in
docs/benchmarks.md ("Training-ready storage").

Resuming: each output is written under a temporary name and renamed when complete, and every finished file appends a
line to ``pack.log.jsonl`` in the output folder; a second run skips what is there. A file that cannot be re-encoded is
recorded (``pack.json``'s ``failed``) and left out of the packed lists; the rest goes on.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidapter.data.datasets import AnnotationError
from vidapter.data.decode import VideoError, _check_file
from vidapter.errors import ConfigError
from vidapter.files import append_line, write_text

MANIFEST, LOG = "pack.json", "pack.log.jsonl"
FRAME_TEMPLATE = "img_{:05d}.jpg"


@dataclass(frozen=True)
class Layout:
    name: str
    x264_params: str | None  # None: JPEG frame folders
    tune: str | None = None
    doc: str = ""


_SPARSE = "keyint=250:scenecut=0:bframes=16:b-adapt=0:b-pyramid=none:mbtree=0"
LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("sparse", _SPARSE, "fastdecode", "H.264, 16 unreferenced B-frames per anchor, CAVLC, no deblocking"),
        Layout("gop8", "keyint=8:min-keyint=8:scenecut=0:bframes=0", None, "H.264, a keyframe every 8 frames"),
        Layout("gop16", "keyint=16:min-keyint=16:scenecut=0:bframes=0", None, "H.264, a keyframe every 16 frames"),
        Layout("intra", "keyint=1:bframes=0", None, "H.264, every frame a keyframe"),
        Layout("h264", "", None, "H.264 with x264's defaults (long GOP)"),
        Layout("jpeg", None, None, "JPEG frame folders (rawframes)"),
    )
}
DEFAULT_LAYOUT = "sparse"


def resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side exactly ``short_side`` and the longer one rounded to even."""
    scale = short_side / min(width, height)
    w, h = round(width * scale / 2) * 2, round(height * scale / 2) * 2
    return (short_side, h) if width <= height else (w, short_side)


def _upright_frames(stream, short_side: int):
    """Yield (frame as an av.VideoFrame of the output size, (w, h)) upright; rotation metadata is applied to pixels."""
    import av

    size = None
    for frame in stream.container.decode(stream):
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
        if size is None:
            w, h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
            size = resized_shape(w, h, short_side)
        if turns:  # rare (phone videos): rotate the RGB pixels, then scale
            rgb = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k=turns))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        yield frame, size


def pack_video(src: str | os.PathLike, dst: str | os.PathLike, layout: str = DEFAULT_LAYOUT, *, short_side: int = 256,
               crf: int = 23, quality: int = 90) -> dict:  # fmt: skip
    """Re-encode ``src`` into ``dst`` in ``layout`` (a file, or a frame folder for ``jpeg``), written under a temporary
    name and renamed when complete. Returns ``{"frames", "fps", "bytes"}``; raises VideoError naming why it failed."""
    import av

    spec = LAYOUTS[layout]
    _check_file(Path(src))
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    _remove(tmp)
    try:
        with av.open(str(src)) as inp:
            if not inp.streams.video:
                raise VideoError(src, "no video stream")
            s_in = inp.streams.video[0]
            s_in.thread_count = 1
            rate = s_in.average_rate or s_in.guessed_rate or Fraction(25)
            if spec.x264_params is None:
                n = _write_jpegs(_upright_frames(s_in, short_side), tmp, quality)
            else:
                n = _write_h264(_upright_frames(s_in, short_side), tmp, rate, spec, crf)
        if n == 0:
            raise VideoError(src, "no frames decode")
        _remove(dst)
        os.replace(tmp, dst)
    except (av.FFmpegError, OSError, RuntimeError, ValueError) as e:
        raise VideoError(src, f"cannot re-encode ({type(e).__name__}: {getattr(e, 'strerror', None) or e})") from e
    finally:
        _remove(tmp)  # gone after the rename; whatever a failure or an interrupt left otherwise
    return {"frames": n, "fps": float(rate), "bytes": _size(dst)}


def _write_h264(frames, path: Path, rate: Fraction, spec: Layout, crf: int) -> int:
    import av

    n = 0
    with av.open(str(path), "w", format="mp4") as out:
        s_out = None
        for frame, (w, h) in frames:
            if s_out is None:
                s_out = out.add_stream("libx264", rate=rate)
                s_out.width, s_out.height, s_out.pix_fmt = w, h, "yuv420p"
                options = {"crf": str(crf), "preset": "veryfast"}
                options |= {"x264-params": spec.x264_params} if spec.x264_params else {}
                s_out.options = options | ({"tune": spec.tune} if spec.tune else {})
                s_out.thread_count = 1
            small = frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = n, Fraction(1) / rate
            small.pict_type = 0  # a decoded frame keeps its I/P/B type, which libx264 would take as an order
            out.mux(s_out.encode(small))
            n += 1
        if s_out is not None:
            out.mux(s_out.encode())
    return n


def _write_jpegs(frames, folder: Path, quality: int) -> int:
    import warnings

    import torch
    from torchvision.io import encode_jpeg

    folder.mkdir(parents=True)
    n = 0
    for frame, (w, h) in frames:
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        with warnings.catch_warnings():  # deprecated in torchvision 0.29 for torchcodec's; the same libjpeg-turbo
            warnings.simplefilter("ignore", DeprecationWarning)
            data = encode_jpeg(torch.from_numpy(rgb).permute(2, 0, 1), quality=quality)
        (folder / FRAME_TEMPLATE.format(n + 1)).write_bytes(data.numpy().tobytes())
        n += 1
    return n


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size


def packed_path(rel: str, layout: str) -> str:
    """Where ``rel`` goes: the same relative path (an MP4 container whatever the extension), or for ``jpeg`` a frame
    folder named like the video without its extension."""
    return str(Path(rel).with_suffix("")) if layout == "jpeg" else rel


def _probe(path: Path, layout: str) -> dict:
    """Frames, fps and bytes of an output that exists but was not logged (interrupted between rename and log)."""
    if layout == "jpeg":
        return {"frames": len(list(path.glob("img_*.jpg"))), "fps": None, "bytes": _size(path)}
    from vidapter.data.decode import PyAVVideo

    with PyAVVideo(path) as v:
        return {"frames": v.num_frames, "fps": v.fps, "bytes": _size(path)}


def _one(job: tuple) -> dict:
    rel, src, dst, layout, short_side, crf, quality = job
    t0 = time.process_time()
    try:
        info = pack_video(src, dst, layout, short_side=short_side, crf=crf, quality=quality)
    except VideoError as e:
        return {"path": rel, "error": e.reason}
    return {"path": rel, **info, "cpu_s": round(time.process_time() - t0, 3)}


def _read_log(path: Path) -> dict[str, dict]:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that file is checked again
            done[entry["path"]] = entry
    return done


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


def check_inside(rel: str, where: str) -> None:
    """Refuse a list path that would write outside the output folder: an absolute path (its packed copy would be the
    source itself) or one whose ``..`` climbs above the root. ``where`` names its origin ("list.txt:12")."""
    if not rel or os.path.isabs(rel) or os.path.normpath(rel).split(os.sep)[0] == "..":
        raise AnnotationError(f"{where}: {rel!r} would be written outside the output folder: paths in a list to pack "
                              "must be relative to --root and stay below it")  # fmt: skip


def pack_tree(
    rel_paths: list[str], src_root: str | os.PathLike, dst_root: str | os.PathLike, *, layout: str = DEFAULT_LAYOUT,
    short_side: int = 256, crf: int = 23, quality: int = 90, workers: int | None = None, progress: bool = True,
    origins: dict[str, str] | None = None,
) -> dict[str, dict]:  # fmt: skip
    """Pack every ``src_root/rel`` into ``dst_root`` in parallel (one encoder thread per process). Outputs already
    there are kept (resuming); failures of an earlier run are tried again. Returns {rel: log entry} for every path:
    ``{"frames", "fps", "bytes", ...}`` or ``{"error": reason}``.

    Nothing is written outside ``dst_root``: a path that would leave it (``check_inside``) is refused before any work,
    named by its ``origins`` entry (the list file and line it came from) when given."""
    _check_layout(layout)
    for rel in rel_paths:
        check_inside(rel, (origins or {}).get(rel, rel))
    src_root, dst_root = Path(src_root), Path(dst_root)
    dst_root.mkdir(parents=True, exist_ok=True)
    log_path = dst_root / LOG
    logged = _read_log(log_path)
    entries, jobs = {}, []
    for rel in dict.fromkeys(rel_paths):
        dst = dst_root / packed_path(rel, layout)
        if dst.exists():
            entry = logged.get(rel)
            if entry is None or "error" in entry:  # renamed into place, but the kill came before its log line
                entry = {"path": rel, **_probe(dst, layout)}
                append_line(log_path, json.dumps(entry))
            entries[rel] = entry
        else:
            jobs.append((rel, str(src_root / rel), str(dst), layout, short_side, crf, quality))
    failed, t0 = 0, time.perf_counter()
    processes = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    # spawned, not forked: a parent that has run PyTorch (a training script, a benchmark) can leave thread-pool locks
    # held in a forked child, and the JPEG encoder runs on PyTorch tensors
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_one, j) for j in jobs]
        for done, fut in enumerate(as_completed(futures), 1):
            entry = fut.result()
            entries[entry["path"]] = entry
            append_line(log_path, json.dumps(entry))
            failed += "error" in entry
            if progress:
                rate = done / max(time.perf_counter() - t0, 1e-9)
                eta = (len(jobs) - done) / rate
                print(f"\rpacked {done}/{len(jobs)}  failed {failed}  {rate:.1f} videos/s  eta {eta:.0f} s", end="",
                      file=sys.stderr, flush=True)  # fmt: skip
    if progress and jobs:
        print(file=sys.stderr)
    return entries


def _list_paths(path: Path) -> tuple[str, list[tuple[str, list[str]]]]:
    """(format, [(relative video path, the line's fields)]) of a list file (``path label``) or a CSV list."""
    rows = []
    if path.suffix == ".csv":
        for n, row in enumerate(csv.reader(path.read_text().splitlines()), 1):
            if not row or (n == 1 and row[0].strip().lower() in ("path", "video", "filename")):
                continue
            check_inside(row[0].strip(), f"{path}:{n}")
            rows.append((row[0].strip(), row))
        return "csv", rows
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 2:
            raise AnnotationError(f"{path}:{n}: expected 'path label', got {line.strip()!r}")
        check_inside(" ".join(parts[:-1]), f"{path}:{n}")
        rows.append((" ".join(parts[:-1]), parts))
    return "list", rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pack_dataset(
    lists: list[str | os.PathLike], src_root: str | os.PathLike | None, dst_root: str | os.PathLike, *,
    layout: str = DEFAULT_LAYOUT, short_side: int = 256, crf: int = 23, quality: int = 90, workers: int | None = None,
    progress: bool = True,
) -> dict:  # fmt: skip
    """Pack the videos of ``lists`` (relative to ``src_root``, default each list's folder) into ``dst_root``, write
    each list there (without the files that failed; ``jpeg``: as rawframes lists ``dir num_frames label``) and the
    manifest ``pack.json``. Returns the manifest."""
    _check_layout(layout)
    parsed = {}
    for lst in map(Path, lists):
        if not lst.exists():
            raise AnnotationError(f"{lst}: list file not found")
        fmt, rows = _list_paths(lst)
        if layout == "jpeg" and fmt == "csv":
            raise ConfigError(
                f"{lst}: the jpeg layout writes rawframes lists, which have no start and end times; use a list file"
            )
        parsed[lst] = (fmt, rows)
    roots = {lst: Path(src_root) if src_root is not None else lst.parent for lst in parsed}
    if len(set(roots.values())) > 1:
        raise ConfigError("lists in different folders need one --root that their paths are relative to")
    root = next(iter(roots.values()))
    rels = [rel for _, rows in parsed.values() for rel, _ in rows]
    t0 = time.perf_counter()
    entries = pack_tree(rels, root, dst_root, layout=layout, short_side=short_side, crf=crf, quality=quality,
                        workers=workers, progress=progress)  # fmt: skip
    wall = time.perf_counter() - t0
    failed = {rel: e["error"] for rel, e in entries.items() if "error" in e}
    dst_root = Path(dst_root)
    written = {}
    for lst, (fmt, rows) in parsed.items():
        out = dst_root / (lst.name if layout != "jpeg" else lst.with_suffix(".txt").name)
        if out.resolve() == lst.resolve():
            raise ConfigError(f"{out}: the output folder holds the list being packed; choose another --out")
        text = io.StringIO()
        for rel, fields in rows:
            if rel in failed:
                continue
            if fmt == "csv":
                csv.writer(text, lineterminator="\n").writerow(fields)
            elif layout == "jpeg":
                text.write(f"{packed_path(rel, layout)} {entries[rel]['frames']} {fields[-1]}\n")
            else:
                text.write(" ".join(fields) + "\n")
        write_text(out, text.getvalue())
        written[out.name] = {"source": str(lst), "source_sha256": _sha256(lst), "sha256": _sha256(out),
                             "entries": len(rows) - sum(rel in failed for rel, _ in rows)}  # fmt: skip
    sources = [root / rel for rel, e in entries.items() if "error" not in e]
    source_bytes = sum(p.stat().st_size for p in sources if p.is_file())
    manifest = _manifest(entries, failed, layout, short_side, crf, quality, written, wall) | {
        "source_bytes": source_bytes,
        "source_root": str(root),
    }
    write_text(dst_root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _manifest(entries, failed, layout, short_side, crf, quality, lists, wall) -> dict:
    import av

    from vidapter.version import __version__ as version

    ok = [e for e in entries.values() if "error" not in e]
    total = sum(e["bytes"] for e in ok)
    seconds = sum(e["frames"] / e["fps"] for e in ok if e.get("fps"))
    spec = LAYOUTS[layout]
    encoder = {"format": "jpeg frame folders", "template": FRAME_TEMPLATE, "quality": quality}
    if spec.x264_params is not None:
        encoder = {"format": "mp4", "codec": "libx264", "pix_fmt": "yuv420p", "preset": "veryfast", "crf": crf,
                   "tune": spec.tune, "x264_params": spec.x264_params}  # fmt: skip
    return {
        "layout": layout,
        "description": spec.doc,
        "short_side": short_side,
        "encoder": encoder | {"scaling": "area", "libavcodec": ".".join(map(str, av.library_versions["libavcodec"]))},
        "files": len(ok),
        "frames": sum(e["frames"] for e in ok),
        "hours": seconds / 3600,
        "bytes": total,
        "bytes_per_hour": total / (seconds / 3600) if seconds else None,
        "failed": failed,
        "lists": lists,
        "packed_with": f"vidapter {version}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "last_run_wall_s": round(wall, 1),
    }


def find_manifest(*folders: str | os.PathLike | None) -> Path | None:
    """The first ``pack.json`` among ``folders`` (a packed data root or a packed list's folder), if any."""
    for folder in folders:
        if folder is not None and (Path(folder) / MANIFEST).is_file():
            return Path(folder) / MANIFEST
    return None

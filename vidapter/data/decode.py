"""Video decoding: the only file that knows a video library.

``open_video(path, backend)`` gives a reader with ``num_frames`` and ``get(indices)`` -> (len(indices), H, W, 3) uint8.
Frame index i is the i-th frame in presentation order (so variable frame rate needs no special case: indices count
frames, not seconds). Backends: "pyav" (default, in the core install), "decord" and "torchcodec" (optional), and
raw-frame folders of JPEG/PNG files.

The PyAV reader decodes only what a sample needs: it lists packet timestamps and keyframes once (demuxing, no
decoding), then for sorted, de-duplicated indices seeks by PTS only when a keyframe lies between the current position
and the next needed frame, decodes forward on one thread, lets the decoder drop non-reference frames nobody asked
for (``skip_frame=NONREF`` per packet), and converts only the needed frames to RGB.
Rotation metadata (phone videos) is applied: frames come out upright. ``short_side=S`` (PyAV) scales frames in the
colour conversion so their shorter side is S (swscale, area averaging), instead of converting the full frame to RGB and
resizing afterwards: the same geometry as torchvision's ``Resize(S)``, other pixels (a documented deviation, off by
default: ``data.decode_resize``).

Damaged data: by default decoders conceal errors (as decord and the reference pipeline do), so a clip with a damaged
frame still yields frames; ``strict=True`` (PyAV) turns any decoding error into a ``VideoError`` instead. Training
uses the default, ``vidapter data check`` uses strict decoding to list damaged files before a run.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidapter.errors import ConfigError, MissingDependency, VidapterError

BACKENDS = ("pyav", "decord", "torchcodec")


class VideoError(VidapterError):
    """A video that cannot be read; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")


def _gather(frames: dict[int, np.ndarray], indices: Sequence[int], path) -> np.ndarray:
    missing = sorted(set(indices) - set(frames))
    if missing:
        raise VideoError(path, f"frames {missing[:5]} could not be decoded")
    return np.stack([frames[i] for i in indices])


def _check_indices(indices: Sequence[int], n: int, path) -> None:
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise VideoError(path, f"frame indices {bad[:5]} outside [0, {n})")


class _Reader:
    """Context-manager protocol shared by the readers: ``with open_video(p) as v: v.get(...)``."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PyAVVideo(_Reader):
    """Seek-aware PyAV reader (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, strict: bool = False, short_side: int | None = None):
        import av

        self.path = Path(path)
        self.short_side = short_side
        _check_file(self.path)
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
            detail = getattr(e, "strerror", None) or str(e)  # FFmpeg's message without the path again
            raise VideoError(self.path, f"not a readable video ({type(e).__name__}: {detail})") from e
        if not self._container.streams.video:
            self.close()
            raise VideoError(self.path, "no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "SLICE"  # one decoder thread per worker; frame threading costs CPU-seconds
        self._stream.thread_count = 1
        if strict:
            self._stream.codec_context.options = {"err_detect": "explode"}
        self._pts, self._key_pts = self._scan()
        self._packets = None  # demux iterator positioned after the last seek
        self._reformatter = av.video.reformatter.VideoReformatter()
        self._position: int | None = None  # pts of the last decoded frame
        self._fed = -(2**62)  # the largest pts among the packets fed to the decoder since the last seek

    def _scan(self) -> tuple[list[int], list[int]]:
        import av

        pts, keys = [], []
        try:
            for packet in self._container.demux(self._stream):
                if packet.pts is None or packet.size == 0:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.FFmpegError as e:
            raise VideoError(self.path, f"truncated or corrupt container ({e})") from e
        if not pts:
            raise VideoError(self.path, "video stream has no frames")
        pts.sort()
        keys.sort()
        if not keys or keys[0] > pts[0]:
            keys.insert(0, pts[0])  # decode from the start when the first packet is not flagged
        return pts, keys

    @property
    def num_frames(self) -> int:
        return len(self._pts)

    @property
    def fps(self) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else 0.0

    def get(self, indices: Sequence[int]) -> np.ndarray:
        import av

        _check_indices(indices, self.num_frames, self.path)
        wanted = {self._pts[i]: i for i in set(indices)}
        out: dict[int, np.ndarray] = {}
        fed_before = self._fed
        for i in sorted(set(indices)):
            if i in out:
                continue
            target = self._pts[i]
            key = self._key_pts[bisect.bisect_right(self._key_pts, target) - 1]
            # go on from where the decoder is only when the target's packet was not fed by an earlier call: the
            # decoder holds a few packets ahead of the frame it returned last, fed then as unwanted
            if (self._packets is None or self._position is None or key > self._position or target <= self._position
                    or target <= fed_before):  # fmt: skip
                self._container.seek(key, stream=self._stream, backward=True, any_frame=False)
                self._packets = self._container.demux(self._stream)
                self._position, self._fed, fed_before = None, -(2**62), -(2**62)
            try:
                self._decode_until(target, wanted, out)
            except av.FFmpegError as e:
                detail = getattr(e, "strerror", None) or e
                raise VideoError(self.path, f"decoding failed near frame {i} ({detail})") from e
        return _gather(out, indices, self.path)

    def _decode_until(self, target: int, wanted: dict[int, int], out: dict[int, np.ndarray]) -> None:
        """Feed packets until the frame at ``target`` is out (or passed). Packets of frames nobody asked for are
        decoded with ``skip_frame=NONREF``: if no other frame references them, the decoder drops them unread."""
        codec = self._stream.codec_context
        for packet in self._packets:
            if packet.size and packet.pts is not None:
                codec.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
                self._fed = max(self._fed, packet.pts)
            for frame in codec.decode(packet):
                if frame.pts is None:
                    continue
                self._position = frame.pts
                if frame.pts in wanted:
                    out[wanted[frame.pts]] = self._rgb(frame)
            if self._position is not None and self._position >= target:
                return
        codec.skip_frame = "DEFAULT"
        self._packets = None  # end of stream: the next request seeks

    def decode_all(self) -> int:
        """Decode every frame from the start without colour conversion; returns how many came out."""
        import av

        self._container.seek(self._key_pts[0], stream=self._stream, backward=True)
        self._packets = self._position = None  # the next get() seeks again
        count = 0
        try:
            for _ in self._container.decode(self._stream):
                count += 1
        except av.FFmpegError as e:
            detail = getattr(e, "strerror", None) or e
            raise VideoError(self.path, f"decoding failed after {count} frames ({detail})") from e
        return count

    def _rgb(self, frame) -> np.ndarray:
        # one reformatter per reader: a fresh colour-conversion context per frame costs ~0.3 ms of ~0.4
        size = {}
        if self.short_side:
            size = dict(zip(("width", "height"), resized(frame.width, frame.height, self.short_side), strict=True))
            size["interpolation"] = "AREA"
        img = self._reformatter.reformat(frame, format="rgb24", **size).to_ndarray()
        rotation = getattr(frame, "rotation", 0) or 0
        return np.ascontiguousarray(np.rot90(img, k=round(rotation / 90) % 4)) if rotation % 360 else img

    def close(self) -> None:
        self._container.close()


class DecordVideo(_Reader):
    def __init__(self, path: str | os.PathLike):
        import decord

        self.path = Path(path)
        _check_file(self.path)
        try:
            self._reader = decord.VideoReader(str(self.path), num_threads=1)
        except decord.DECORDError as e:
            raise VideoError(self.path, f"not a readable video ({e})") from e

    @property
    def num_frames(self) -> int:
        return len(self._reader)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(indices, self.num_frames, self.path)
        unique = sorted(set(indices))  # decord decodes in the order given and seeks back otherwise
        frames = self._reader.get_batch(unique).asnumpy()
        return _gather(dict(zip(unique, frames, strict=True)), indices, self.path)

    def close(self) -> None:
        self._reader = None


class TorchCodecVideo(_Reader):
    def __init__(self, path: str | os.PathLike):
        from torchcodec.decoders import VideoDecoder

        self.path = Path(path)
        _check_file(self.path)
        try:
            self._decoder = VideoDecoder(str(self.path), seek_mode="exact", num_ffmpeg_threads=1)
        except (RuntimeError, ValueError) as e:
            if "Could not load libtorchcodec" in str(e):
                message = "torchcodec cannot find FFmpeg 4-9 shared libraries (apt-get install ffmpeg)"
                raise MissingDependency(message) from e
            raise VideoError(self.path, f"not a readable video ({str(e).splitlines()[0]})") from e

    @property
    def num_frames(self) -> int:
        return self._decoder.metadata.num_frames

    def get(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(indices, self.num_frames, self.path)
        unique = sorted(set(indices))
        try:
            batch = self._decoder.get_frames_at(unique).data.permute(0, 2, 3, 1).numpy()
        except RuntimeError as e:
            raise VideoError(self.path, f"decoding failed ({e})") from e
        return _gather(dict(zip(unique, batch, strict=True)), indices, self.path)

    def close(self) -> None:
        self._decoder = None


class FrameFolder(_Reader):
    """A raw-frame folder: ``template.format(i + 1)`` for frame i (MMAction2's ``img_{:05d}.jpg`` by default).

    JPEG frames are decoded with libjpeg-turbo through ``torchvision.io.decode_jpeg``, a clip's frames in one call;
    other formats (or a torchvision without it) through Pillow."""

    def __init__(self, path: str | os.PathLike, num_frames: int, template: str = "img_{:05d}.jpg"):
        self.path, self.template = Path(path), template
        if not self.path.is_dir():
            raise VideoError(self.path, "no such frame folder")
        self._n = num_frames
        self._jpeg = template.lower().endswith((".jpg", ".jpeg")) and _jpeg_decoder() is not None

    @property
    def num_frames(self) -> int:
        return self._n

    def get(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(indices, self._n, self.path)
        unique = sorted(set(indices))
        files = [self.path / self.template.format(i + 1) for i in unique]
        images = self._decode_jpegs(files) if self._jpeg else [_pil_rgb(f) for f in files]
        return _gather(dict(zip(unique, images, strict=True)), indices, self.path)

    @staticmethod
    def _decode_jpegs(files: list[Path]) -> list[np.ndarray]:
        import torch

        data = []
        for f in files:
            try:
                data.append(torch.frombuffer(bytearray(f.read_bytes()) or bytearray(1), dtype=torch.uint8))
            except OSError as e:
                raise VideoError(f, f"unreadable frame ({type(e).__name__}: {e.strerror})") from e
        decode, rgb = _jpeg_decoder()
        try:
            images = decode(data, mode=rgb)
        except RuntimeError:  # name the file: decode them one by one
            for f, d in zip(files, data, strict=True):
                try:
                    decode(d, mode=rgb)
                except RuntimeError as e:
                    raise VideoError(f, f"unreadable frame ({str(e).splitlines()[0].split(', ')[-1]})") from e
            raise
        return [im.permute(1, 2, 0).numpy() for im in images]


def _pil_rgb(f: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise VideoError(f, f"unreadable frame ({type(e).__name__})") from e


_JPEG = []


def _jpeg_decoder():
    """(torchvision's decode_jpeg without its deprecation warning, RGB mode), or None where torchvision lacks it."""
    if not _JPEG:
        try:
            import warnings

            from torchvision.io import ImageReadMode, decode_jpeg

            def quiet(data, mode, device="cpu"):  # deprecated in torchvision 0.29 for torchcodec's; same libjpeg-turbo
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return decode_jpeg(data, mode=mode, device=device)

            _JPEG.append((quiet, ImageReadMode.RGB))
        except ImportError:
            _JPEG.append(None)
    return _JPEG[0]


def resized(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``short_side``, the longer one truncated as torchvision's Resize(int)."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


_READERS = {"pyav": PyAVVideo, "decord": DecordVideo, "torchcodec": TorchCodecVideo}


def open_video(path: str | os.PathLike, backend: str = "pyav", strict: bool = False, short_side: int | None = None):
    """Open ``path`` with the named backend; an optional backend that is not installed says how to get it.
    ``strict`` (PyAV only) makes any decoding error an error instead of a concealed frame; ``short_side`` (PyAV only)
    resizes in the decoder's colour conversion."""
    if backend not in _READERS:
        raise ConfigError(f"unknown video backend {backend!r}; choose from {BACKENDS}")
    for name, value in (("strict decoding", strict), ("resizing while decoding", short_side)):
        if value and backend != "pyav":
            raise ConfigError(f"{name} is available with the pyav backend only (data.backend=pyav)")
    try:
        if backend == "pyav":
            return PyAVVideo(path, strict=strict, short_side=short_side)
        return _READERS[backend](path)
    except ModuleNotFoundError as e:
        raise MissingDependency(f"video backend {backend!r} is not installed: pip install {backend}") from e


def read_all_naive(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame to RGB, then let the caller index: the baseline the benchmarks compare against."""
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def verify_video(path: str | os.PathLike, backend: str = "pyav") -> int:
    """Decode every frame once (no colour conversion); returns the frame count or raises VideoError naming why."""
    if backend != "pyav":
        with open_video(path, backend) as v:
            v.get(list(range(v.num_frames)))
            return v.num_frames
    with PyAVVideo(path, strict=True) as v:
        count = v.decode_all()
    if count < v.num_frames:
        raise VideoError(path, f"only {count} of {v.num_frames} frames decode")
    return count


VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}


def video_files(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files as given; folders expanded to the video files inside (by suffix, recursively, sorted)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            out.append(p)
    return out

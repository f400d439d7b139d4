"""Annotation readers and the video dataset that survives bad files.

Formats (errors name ``file:line`` and what was expected, before any training starts):
- list: ``relative/path.mp4 LABEL`` (MMAction2; space or tab; LABEL an index or a class name);
- csv: ``path,label[,start,end]`` with an optional header, start/end in seconds;
- rawframes: ``dir num_frames label``; frames ``img_00001.jpg``... (template configurable);
- class names: one per line, line i = label i.

A sample that cannot be read (missing, empty, truncated, not a video, no video stream, too few frames, a corrupt
frame) is, in training, replaced deterministically by another, and the name and reason travel with the batch
(``skipped``) so the run can count and report them. In evaluation it is never replaced: the item says it is unreadable
and evaluation leaves it out or counts it as a miss (``evaluation.evaluate``), so the metrics are over the data as
given.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidapter.data.decode import FrameFolder, VideoError, open_video
from vidapter.data.sampling import FrameSampler, SeqSegments
from vidapter.errors import ConfigError, VidapterError


class AnnotationError(VidapterError, ValueError):
    """A malformed annotation: the message starts with ``file:line:``."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    num_frames: int | None = None  # raw-frame folders only
    start: float | None = None  # seconds, CSV only
    end: float | None = None


def read_class_names(path: str | os.PathLike) -> list[str]:
    """A ``classes.txt``: one class name per line (spaces inside a name are kept: "air drumming"), UTF-8; surrounding
    blanks and trailing empty lines are dropped; an empty or repeated name is an error naming the line. A ``.csv``
    is read as the ``id,name`` label files of X-CLIP, ViFi-CLIP and ActionCLIP."""
    if Path(path).suffix == ".csv":
        return _read_label_csv(Path(path))
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, n in enumerate(names, 1):
        if not n:
            raise AnnotationError(f"{path}:{i}: empty class name")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise AnnotationError(f"{path}: class name {dup!r} appears twice")
    return names


def _read_label_csv(path: Path) -> list[str]:
    """A label CSV as X-CLIP, ViFi-CLIP and ActionCLIP ship them: ``id,name`` rows after an ``id,name`` header, ids
    0, 1, ... in order (the order is the class index)."""
    rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines())]
    names = []
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and [c.strip().lower() for c in row] == ["id", "name"]):
            continue
        if len(row) != 2 or row[0].strip() != str(len(names)):
            raise AnnotationError(f"{path}:{n}: expected 'id,name' with id {len(names)}, got {','.join(row)!r}")
        if not row[1].strip():
            raise AnnotationError(f"{path}:{n}: empty class name")
        names.append(row[1].strip())
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise AnnotationError(f"{path}: class name {dup!r} appears twice")
    return names


def _label(token: str, where: str, class_index: dict[str, int] | None, num_classes: int | None) -> int:
    if token.lstrip("-").isdigit():
        label = int(token)
    elif class_index is not None and token in class_index:
        return class_index[token]
    else:
        known = "" if class_index is None else " or one of the class names"
        raise AnnotationError(f"{where}: label {token!r} is not an integer{known}")
    k = num_classes if num_classes is not None else (len(class_index) if class_index else None)
    if label < 0 or (k is not None and label >= k):
        raise AnnotationError(f"{where}: label {label} outside [0, {k})" if k else f"{where}: negative label {label}")
    return label


def read_annotations(
    path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    fmt: str = "auto",
    class_names: list[str] | None = None,
    num_classes: int | None = None,
) -> list[Sample]:
    """Read a list, CSV or raw-frame annotation file; paths are joined to ``root`` (default: the file's folder)."""
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found")
    root = Path(root) if root is not None else path.parent
    if fmt == "auto":
        fmt = "csv" if path.suffix == ".csv" else "list"
    if fmt not in ("list", "csv", "rawframes"):
        raise ConfigError(f"annotation format must be list, csv, rawframes or auto, got {fmt!r}")
    samples = []
    lines = path.read_text().splitlines()
    index = {name: i for i, name in enumerate(class_names)} if class_names is not None else None
    if fmt == "csv":
        rows = list(csv.reader(lines))
        for n, row in enumerate(rows, 1):
            where = f"{path}:{n}"
            if not row or (n == 1 and row[0].strip().lower() in ("path", "video", "filename")):
                continue
            if len(row) not in (2, 4):
                raise AnnotationError(
                    f"{where}: expected 'path,label' or 'path,label,start,end', got {len(row)} fields"
                )
            start = end = None
            if len(row) == 4:
                try:
                    start, end = float(row[2]), float(row[3])
                except ValueError:
                    raise AnnotationError(f"{where}: start/end must be seconds, got {row[2]!r}, {row[3]!r}") from None
                if not 0 <= start < end:
                    raise AnnotationError(f"{where}: need 0 <= start < end, got {start}, {end}")
            label = _label(row[1].strip(), where, index, num_classes)
            samples.append(Sample(str(root / row[0].strip()), label, None, start, end))
        return samples
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        parts = line.split()
        if fmt == "rawframes":
            if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < 1:
                raise AnnotationError(f"{where}: expected 'frame_dir num_frames label', got {line.strip()!r}")
            label = _label(parts[2], where, index, num_classes)
            samples.append(Sample(str(root / parts[0]), label, int(parts[1])))
        else:
            if len(parts) < 2:
                raise AnnotationError(f"{where}: expected 'path label', got {line.strip()!r}")
            label = _label(parts[-1], where, index, num_classes)
            samples.append(Sample(str(root / " ".join(parts[:-1])), label))
    return samples


class DecodedVideo:
    """A video's decoded frames (N, H, W, 3) uint8 held in memory, read like an opened video."""

    def __init__(self, frames: np.ndarray, fps: float):
        self.frames, self.fps, self.num_frames = frames, fps, len(frames)

    def get(self, indices: list[int]) -> np.ndarray:
        return self.frames[indices]

    def __enter__(self) -> DecodedVideo:
        return self

    def __exit__(self, *exc) -> None:
        return None


class VideoDataset(torch.utils.data.Dataset):
    """Decoded, sampled, transformed clips. Index with ``i`` or ``(epoch, i)``; randomness is a function of
    (seed, epoch, i), so the same run gives the same clips whatever the number of workers or processes.

    Item: ``{"video": (C, T, H, W) or (V, C, T, H, W) float (or uint8, then ``normalize`` finishes it on the step's
    device), "label": int, "index": i, "skipped": [(path, reason)]}``.

    An unreadable video: in training (``substitute=True``, the default for ``train``) another sample, drawn from the
    same (seed, epoch, index), takes its place and the file is reported in ``skipped``; in evaluation
    (``substitute=False``) the item is ``{"video": None, ..., "unreadable": (path, reason)}`` under its own index and
    label, so that the evaluation can leave it out or count it as a miss, and say so.
    """

    def __init__(
        self,
        samples: list[Sample],
        sampler: FrameSampler | SeqSegments,
        transform: Callable[[torch.Tensor], torch.Tensor],
        *,
        train: bool,
        backend: str = "pyav",
        seed: int = 0,
        frame_template: str = "img_{:05d}.jpg",
        max_retries: int = 20,
        strict_decode: bool = False,
        decode_short_side: int | None = None,
        cache_decoded: bool = False,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        substitute: bool | None = None,
    ):
        if not samples:
            raise ConfigError("dataset has no samples")
        self.samples, self.sampler, self.transform = samples, sampler, transform
        self.train, self.backend, self.seed = train, backend, seed
        self.frame_template, self.max_retries, self.strict_decode = frame_template, max_retries, strict_decode
        self.decode_short_side = decode_short_side  # resize in the decoder (PyAV), so the transform's Resize is a no-op
        # every decoded frame of every video this process reads, kept for the next epochs (datasets that fit in RAM)
        self.cache: dict[int, DecodedVideo] | None = {} if cache_decoded else None
        self.normalize = normalize  # what the training step applies to a batch when the transform leaves it uint8
        self.substitute = train if substitute is None else substitute

    def __len__(self) -> int:
        return len(self.samples)

    def _open(self, s: Sample):
        if s.num_frames is not None:
            return FrameFolder(s.path, s.num_frames, self.frame_template)
        return open_video(s.path, self.backend, strict=self.strict_decode, short_side=self.decode_short_side)

    def _video(self, i: int):
        """The video of sample ``i``: opened, or from the cache of decoded videos (filled on first use)."""
        if self.cache is None:
            return self._open(self.samples[i])
        if i not in self.cache:
            with self._open(self.samples[i]) as video:
                frames = video.get(list(range(video.num_frames)))
                self.cache[i] = DecodedVideo(frames, getattr(video, "fps", 0.0))
        return self.cache[i]

    def load(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        """Decode and transform sample ``i``; raises VideoError when it cannot be read."""
        s = self.samples[i]
        with self._video(i) as video:
            n = video.num_frames
            first = 0
            if s.start is not None:
                fps = getattr(video, "fps", 0.0)
                if not fps:
                    raise VideoError(s.path, "start/end given but the frame rate is unknown")
                first, last = int(s.start * fps), min(n, int(np.ceil(s.end * fps)))
                if last <= first:
                    raise VideoError(s.path, f"segment {s.start}-{s.end}s has no frames (video has {n})")
                n = last - first
            idx = self.sampler(n, self.train, rng) + first  # (clips, T)
            frames = torch.from_numpy(video.get(idx.reshape(-1).tolist()))
        clips = frames.view(idx.shape[0], idx.shape[1], *frames.shape[1:])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**62)))
            views = [self.transform(c) for c in clips]
        if self.train:
            return views[0]
        # test views: clips x crops folded into one axis, crops fastest
        return torch.cat([v if v.ndim == 5 else v.unsqueeze(0) for v in views])

    def __getitem__(self, key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        skipped = []
        i = index
        for attempt in range(self.max_retries):
            rng = np.random.default_rng([self.seed, epoch, index, attempt])
            try:
                video = self.load(i, rng)
                return {"video": video, "label": self.samples[i].label, "index": index, "skipped": skipped}
            except VideoError as e:
                skipped.append((e.path, e.reason))
                if not self.substitute:
                    label = self.samples[index].label
                    return {"video": None, "label": label, "index": index, "skipped": skipped,
                            "unreadable": (e.path, e.reason)}  # fmt: skip
                i = int(rng.integers(len(self.samples)))
        raise RuntimeError(
            f"{self.max_retries} unreadable samples in a row starting at {self.samples[index].path}: "
            f"{skipped[-1][1]}; run `vidapter data check` on the list"
        )

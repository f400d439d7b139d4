"""The data builder: a ``DataConfig`` section (plus the model's frames and the backbone's mean/std) -> datasets."""

from __future__ import annotations

from vidapter.config import DataConfig
from vidapter.data.datasets import VideoDataset, read_annotations, read_class_names
from vidapter.data.sampling import FrameSampler, SeqSegments, dense, segments_seq, uniform
from vidapter.data.transforms import ColorJitter, MultiViewTransform, Normalize, train_transform, val_transform
from vidapter.errors import ConfigError

SPLITS = ("train", "val", "test")
SAMPLINGS = ("dense", "uniform", "segments_seq")  # the last two: one clip of T segments (data/sampling.py)
NORMALIZE = ("auto", "step", "loader")


def frame_sampler(cfg: DataConfig, num_frames: int, split: str) -> FrameSampler | SeqSegments:
    if cfg.sampling == "uniform":
        return uniform(num_frames)
    if cfg.sampling == "segments_seq":
        return segments_seq(num_frames)
    if cfg.sampling == "dense":
        return dense(num_frames, cfg.frame_interval, cfg.test_clips if split == "test" else 1)
    raise ConfigError(f"data.sampling must be one of {', '.join(map(repr, SAMPLINGS))}, got {cfg.sampling!r}")


def test_views(cfg: DataConfig) -> tuple[int, int]:
    """(clips, crops) of the test protocol: segment sampling has one clip (segment centres or midpoints)."""
    return (cfg.test_clips if cfg.sampling == "dense" else 1), cfg.test_crops


def normalizes_in_loader(cfg: DataConfig) -> bool:
    """Where clips are normalised: ``data.normalize=step`` (uint8 leaves the loader, the training step normalises on
    its device), ``loader`` (float32 from the workers), ``auto`` (step, except with RandomErasing, whose erased pixels
    are exactly 0 after normalisation)."""
    if cfg.normalize not in NORMALIZE:
        raise ConfigError(f"data.normalize must be one of {', '.join(NORMALIZE)}, got {cfg.normalize!r}")
    if cfg.normalize == "step" and cfg.erasing > 0:
        raise ConfigError("data.normalize=step cannot go with data.erasing > 0 (erased pixels are 0 after "
                         "normalisation): use data.normalize=loader or auto")  # fmt: skip
    return cfg.normalize == "loader" or (cfg.normalize == "auto" and cfg.erasing > 0)


def clip_transform(cfg: DataConfig, split: str, mean, std, normalize: bool = True):
    """The clip transform of ``split``; ``mean``/``std`` are the backbone's, unless ``data.mean``/``data.std`` say
    otherwise (the AIM recipes: the reference configs' values). ``normalize=False``: clips stay uint8 (``Normalize``
    in the step)."""
    mean, std = normalisation(cfg, mean, std)
    if split == "train":
        ra = tuple(cfg.randaugment) if cfg.randaugment else None
        if ra is not None and len(ra) != 2:
            raise ConfigError(f"data.randaugment must be [n, m], got {cfg.randaugment}")
        cj = tuple(cfg.color_jitter) if cfg.color_jitter is not None else None
        limits = ColorJitter.LIMITS
        if cj is not None and (len(cj) != 4 or not all(0 <= v <= t for v, t in zip(cj, limits, strict=True))):
            raise ConfigError(
                f"data.color_jitter must be [brightness, contrast, saturation, hue] with the first three in [0, 1] and "
                f"hue in [0, 0.5], got {cfg.color_jitter}"
            )
        jitter = tuple(cfg.short_side_range) if cfg.short_side_range is not None else None
        if jitter is not None and (len(jitter) != 2 or not cfg.size <= jitter[0] <= jitter[1]):
            raise ConfigError(f"data.short_side_range must be [a, b] with {cfg.size} (data.size) <= a <= b, got "
                             f"{cfg.short_side_range}")  # fmt: skip
        return train_transform(mean, std, size=cfg.size, short_side=cfg.short_side, area=tuple(cfg.area),
                               short_side_range=jitter,
                               flip=cfg.flip, randaugment=ra, randaugment_impl=cfg.randaugment_impl,
                               erasing=cfg.erasing, color_jitter=cj, seed=cfg.seed, normalize=normalize)  # fmt: skip
    if split == "val":
        return val_transform(mean, std, size=cfg.size, short_side=cfg.short_side, normalize=normalize)
    return MultiViewTransform(mean, std, size=cfg.size, short_side=cfg.test_short_side, crops=cfg.test_crops,
                              normalize=normalize)  # fmt: skip


def normalisation(cfg: DataConfig, mean, std) -> tuple[list[float], list[float]]:
    for name, value in (("mean", cfg.mean), ("std", cfg.std)):
        if value is not None and (len(value) != 3 or (name == "std" and min(value) <= 0)):
            raise ConfigError(f"data.{name} must be 3 values on the 0-255 scale{' above 0' * (name == 'std')}, "
                             f"got {value}")  # fmt: skip
    return list(cfg.mean if cfg.mean is not None else mean), list(cfg.std if cfg.std is not None else std)


def build_dataset(
    cfg: DataConfig, split: str, *, num_frames: int, num_classes: int, mean, std
) -> tuple[VideoDataset, list[str] | None]:
    """The dataset of one split (train: one augmented clip; val: 1 view; test: clips x crops views) and class names.
    ``dataset.normalize`` is the step's ``Normalize`` when clips leave the loader as uint8 (else None).

    Annotation errors (file:line) are raised here, before any training starts.
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    path = getattr(cfg, f"{split}_list")
    if path is None:
        raise ConfigError(f"data.{split}_list is not set")
    names = read_class_names(cfg.class_names) if cfg.class_names else None
    if names is not None and len(names) != num_classes:
        raise ConfigError(f"{cfg.class_names}: {len(names)} class names, but model.num_classes is {num_classes}")
    samples = read_annotations(path, root=cfg.root, fmt=cfg.format, class_names=names, num_classes=num_classes)
    in_loader = normalizes_in_loader(cfg)
    dataset = VideoDataset(
        samples,
        frame_sampler(cfg, num_frames, split),
        clip_transform(cfg, split, mean, std, normalize=in_loader),
        train=split == "train",
        backend=cfg.backend,
        seed=cfg.seed,
        frame_template=cfg.frame_template,
        strict_decode=cfg.strict_decode,
        decode_short_side=(cfg.test_short_side if split == "test" else cfg.short_side) if cfg.decode_resize else None,
        cache_decoded=cfg.cache_decoded,
        normalize=None if in_loader else Normalize(*normalisation(cfg, mean, std)),
    )
    return dataset, names

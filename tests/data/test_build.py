"""Config sections -> datasets, and the recipes' data settings."""

from __future__ import annotations

import pytest
import torch

from vidapter.config import DataConfig
from vidapter.data.build import build_dataset
from vidapter.data.synthetic import CLASSES


def _cfg(synth, **kw) -> DataConfig:
    base = dict(
        train_list=str(synth / "train.txt"),
        val_list=str(synth / "val.txt"),
        test_list=str(synth / "val.txt"),
        class_names=str(synth / "classes.txt"),
        size=24,
        short_side=28,
        test_short_side=24,
        workers=0,
    )
    return DataConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "sampling, clips, crops, views",
    [("dense", 2, 3, 6), ("dense", 1, 1, 1), ("uniform", 1, 3, 3), ("segments_seq", 1, 3, 3)],
)
def test_splits_and_views(synth, sampling, clips, crops, views):
    cfg = _cfg(synth, sampling=sampling, frame_interval=2, test_clips=clips, test_crops=crops)
    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(0, 0, 0), std=(1, 1, 1))
    train, names = build_dataset(cfg, "train", **kw)
    assert names == CLASSES and len(train) == 2 * len(CLASSES)
    assert train[0]["video"].shape == (3, 4, 24, 24)
    val, _ = build_dataset(cfg, "val", **kw)
    assert val[0]["video"].shape == (1, 3, 4, 24, 24)
    test, _ = build_dataset(cfg, "test", **kw)
    assert test[0]["video"].shape == (views, 3, 4, 24, 24)


def test_class_count_must_match_the_model(synth):
    with pytest.raises(ValueError, match=r"19 class names, but model.num_classes is 400"):
        build_dataset(_cfg(synth), "train", num_frames=4, num_classes=400, mean=(0, 0, 0), std=(1, 1, 1))


def test_unset_list_is_named(synth):
    with pytest.raises(ValueError, match="data.test_list is not set"):
        build_dataset(
            _cfg(synth, test_list=None), "test", num_frames=4, num_classes=len(CLASSES), mean=(0,) * 3, std=(1,) * 3
        )


def test_color_jitter_reaches_the_train_clips(synth):
    """data.color_jitter adds MMAction2's ColorJitter after the flip; the pixels change, val does not."""
    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(0, 0, 0), std=(1, 1, 1))
    plain, _ = build_dataset(_cfg(synth, area=[1.0, 1.0], flip=0.0), "train", **kw)
    jitter, _ = build_dataset(_cfg(synth, area=[1.0, 1.0], flip=0.0, color_jitter=[0.5, 0.5, 0.5, 0.1]), "train", **kw)
    steps = [type(t).__name__ for t in jitter.transform.pipeline.transforms]
    assert steps.index("ColorJitter") == steps.index("RandomResizedCrop") + 1
    a, b = plain[0]["video"].float(), jitter[0]["video"].float()
    assert a.shape == b.shape and (a - b).abs().mean() > 1


@pytest.mark.parametrize("bad", [[0.5, 0.5, 0.5], [1.5, 0.5, 0.5, 0.1], [0.5, 0.5, 0.5, 0.6], [0.5, -0.1, 0.5, 0.1]])
def test_bad_color_jitter_is_named(synth, bad):
    with pytest.raises(ValueError, match=r"data.color_jitter must be \[brightness, contrast, saturation, hue\]"):
        build_dataset(
            _cfg(synth, color_jitter=bad), "train", num_frames=4, num_classes=len(CLASSES), mean=(0,) * 3, std=(1,) * 3
        )


def test_decode_resize_reads_at_the_transform_size(synth):
    """data.decode_resize: the reader scales to short_side (test_short_side for test), the clips keep their shape and
    stay close to decode-then-resize (the synthetic frames are 32 px, so 28 and 24 are real resizes)."""
    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(0, 0, 0), std=(1, 1, 1))
    for split, short in (("val", 28), ("test", 24)):
        plain, _ = build_dataset(_cfg(synth), split, **kw)
        lean, _ = build_dataset(_cfg(synth, decode_resize=True), split, **kw)
        assert plain.decode_short_side is None and lean.decode_short_side == short
        a, b = plain[0]["video"].float(), lean[0]["video"].float()
        assert a.shape == b.shape
        assert (a - b).abs().mean() < 6  # 0-255 scale (mean 0, std 1): different resampling, the same picture


@pytest.mark.parametrize("split", ["train", "test"])
def test_cached_decoding_gives_the_same_clips(synth, split, tmp_path):
    """data.cache_decoded keeps decoded videos in memory: the same items as decoding each time, and a second epoch
    reads no file (the files are gone by then)."""
    import shutil

    for f in ("train.txt", "val.txt", "classes.txt"):
        shutil.copy(synth / f, tmp_path / f)
    for folder in ("train", "val"):
        shutil.copytree(synth / folder, tmp_path / folder)
    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(0, 0, 0), std=(1, 1, 1))
    plain, _ = build_dataset(_cfg(tmp_path, sampling="dense", frame_interval=2, test_crops=3), split, **kw)
    cached, _ = build_dataset(_cfg(tmp_path, sampling="dense", frame_interval=2, test_crops=3, cache_decoded=True),
                              split, **kw)  # fmt: skip
    keys = [(0, i) for i in range(len(plain))]
    first = [cached[k]["video"] for k in keys]
    for k, video in zip(keys, first, strict=True):
        assert torch.equal(video, plain[k]["video"])
    for folder in ("train", "val"):
        shutil.rmtree(tmp_path / folder)
    for e in (1, 2):
        for i in range(len(plain)):
            item = cached[(e, i)]
            assert item["skipped"] == [] and item["video"].shape == first[i].shape


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_step_normalisation_equals_loader_normalisation(synth, split):
    """data.normalize=auto (no erasing) hands uint8 clips over; the dataset's Normalize, run where the step runs, gives
    the very floats that normalising in the loader gives."""
    from vidapter.data.loader import collate

    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(122.8, 116.7, 104.1), std=(68.5, 66.6, 70.3))
    step, _ = build_dataset(_cfg(synth, test_crops=3), split, **kw)
    loader, _ = build_dataset(_cfg(synth, test_crops=3, normalize="loader"), split, **kw)
    assert loader.normalize is None and step.normalize is not None
    a = collate([step[(1, i)] for i in range(3)])["video"]
    b = collate([loader[(1, i)] for i in range(3)])["video"]
    assert a.dtype == torch.uint8 and b.dtype == torch.float32 and a.nbytes * 4 == b.nbytes
    assert torch.equal(step.normalize(a), b)


def test_erasing_keeps_normalisation_in_the_loader(synth):
    kw = dict(num_frames=4, num_classes=len(CLASSES), mean=(0, 0, 0), std=(1, 1, 1))
    auto, _ = build_dataset(_cfg(synth, erasing=0.25), "train", **kw)
    assert auto.normalize is None and auto[0]["video"].dtype == torch.float32
    with pytest.raises(ValueError, match="data.normalize=step cannot go with data.erasing > 0"):
        build_dataset(_cfg(synth, erasing=0.25, normalize="step"), "train", **kw)
    with pytest.raises(ValueError, match="data.normalize must be one of auto, step, loader"):
        build_dataset(_cfg(synth, normalize="gpu"), "train", **kw)

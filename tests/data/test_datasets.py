"""Annotations fail loud with file:line; the dataset survives every kind of bad file, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from videos import read_index

from vidapter.cli import main
from vidapter.data.datasets import AnnotationError, Sample, VideoDataset, read_annotations, read_class_names
from vidapter.data.loader import SkipLog, build_loader
from vidapter.data.sampling import dense, uniform
from vidapter.data.synthetic import CLASSES
from vidapter.data.transforms import MultiViewTransform, train_transform, val_transform


def _plain(frames: torch.Tensor) -> torch.Tensor:
    return frames.permute(3, 0, 1, 2)  # (T, H, W, C) -> (C, T, H, W), no resampling


def test_list_csv_and_rawframes(tmp_path):
    (tmp_path / "a.txt").write_text("x/1.mp4 0\nx/2 b.mp4\t2\n\n# comment\n")
    s = read_annotations(tmp_path / "a.txt", num_classes=3)
    assert [(x.path, x.label) for x in s] == [(str(tmp_path / "x/1.mp4"), 0), (str(tmp_path / "x/2 b.mp4"), 2)]
    (tmp_path / "b.csv").write_text("path,label,start,end\nv.mp4,dog,1.5,3\n")
    s = read_annotations(tmp_path / "b.csv", class_names=["cat", "dog"], root="/data")
    assert s == [Sample("/data/v.mp4", 1, None, 1.5, 3.0)]
    (tmp_path / "r.txt").write_text("frames/v1 30 1\n")
    assert read_annotations(tmp_path / "r.txt", fmt="rawframes")[0].num_frames == 30


@pytest.mark.parametrize(
    "text, fmt, message",
    [
        ("a.mp4 0\nb.mp4\n", "list", r"a.txt:2: expected 'path label', got 'b.mp4'"),
        ("a.mp4 7\n", "list", r"a.txt:1: label 7 outside \[0, 5\)"),
        ("a.mp4 horse\n", "list", r"a.txt:1: label 'horse' is not an integer or one of the class names"),
        ("d 5 1\nd x 1\n", "rawframes", r"a.txt:2: expected 'frame_dir num_frames label'"),
        ("a.mp4,1,5,2\n", "csv", r"a.txt:1: need 0 <= start < end"),
        ("a.mp4,1,2\n", "csv", r"a.txt:1: expected 'path,label' or 'path,label,start,end', got 3 fields"),
    ],
)
def test_malformed_annotations_name_file_and_line(tmp_path, text, fmt, message):
    (tmp_path / "a.txt").write_text(text)
    names = ["a", "b", "c", "d", "e"]
    with pytest.raises(AnnotationError, match=message):
        read_annotations(tmp_path / "a.txt", fmt=fmt, class_names=names, num_classes=5)


def test_class_names_file(tmp_path):
    (tmp_path / "c.txt").write_text("air drumming\n  b \n\n")  # a name's inner spaces are kept
    assert read_class_names(tmp_path / "c.txt") == ["air drumming", "b"]
    (tmp_path / "d.txt").write_text("a\nb\na\n")
    with pytest.raises(AnnotationError, match="'a' appears twice"):
        read_class_names(tmp_path / "d.txt")


def test_dataset_samples_the_right_frames(index_video):
    ds = VideoDataset([Sample(str(index_video), 3)], dense(8, 4, 3), _plain, train=False)
    item = ds[0]
    assert item["video"].shape == (3, 3, 8, 48, 128) and item["label"] == 3 and item["skipped"] == []
    got = [[read_index(item["video"][v, :, t].numpy()) for t in range(8)] for v in range(3)]
    assert got == dense(8, 4, 3)(120, train=False).tolist()


def test_csv_segment_restricts_frames(index_video):
    ds = VideoDataset([Sample(str(index_video), 0, None, 2.0, 4.0)], uniform(4), _plain, train=False)
    frames = [read_index(ds[0]["video"][0, :, t].numpy()) for t in range(4)]
    assert frames == [56, 68, 81, 93]  # 25 fps: frames [50, 100); 4 segments of 12.5, centres


def test_bad_files_are_replaced_deterministically_and_reported(broken, tmp_path):
    good, files = broken
    samples = [Sample(str(p), i) for i, p in enumerate(files.values())] + [Sample(str(good), 99)]
    ds = VideoDataset(samples, uniform(64), _plain, train=True, strict_decode=True)  # every frame: hits the damage
    items = [ds[(0, i)] for i in range(len(samples))]
    kept = {samples[i].path: (it["label"], it["skipped"]) for i, it in enumerate(items) if it["label"] != 99}
    assert not kept  # every bad one replaced by the only good one
    reasons = {path: reason for it in items for path, reason in it["skipped"]}
    assert set(reasons) == {str(p) for p in files.values()}
    again = [ds[(0, i)] for i in range(len(samples))]
    assert all(
        torch.equal(a["video"], b["video"]) and a["skipped"] == b["skipped"] for a, b in zip(items, again, strict=True)
    )
    log = SkipLog(tmp_path / "run")
    for it in items:
        log.add(it["skipped"])
    report = log.end_epoch(0)
    assert report["count"] >= len(files) and (tmp_path / "run" / "skipped.jsonl").exists()


def test_all_bad_is_an_error_naming_a_file(broken):
    _, files = broken
    ds = VideoDataset([Sample(str(files["empty"]), 0)], uniform(4), _plain, train=True, max_retries=3)
    with pytest.raises(RuntimeError, match=r"3 unreadable samples in a row starting at .*empty.mp4"):
        ds[0]


def test_loader_is_reproducible_whatever_the_workers(synth):
    samples = read_annotations(synth / "train.txt", class_names=CLASSES)
    t = train_transform((0, 0, 0), (1, 1, 1), size=24, short_side=32, randaugment=(2, 9), erasing=0.5)
    ds = VideoDataset(samples, uniform(8), t, train=True, seed=7)
    runs = []
    for workers in (0, 2):
        loader = build_loader(ds, 4, train=True, workers=workers, seed=7)
        epochs = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            epochs.append([(b["index"].clone(), b["video"].clone()) for b in loader])
        runs.append(epochs)
    for (i0, v0), (i2, v2) in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1], strict=True):
        assert torch.equal(i0, i2) and torch.equal(v0, v2)
    assert not torch.equal(runs[0][0][0][0], runs[0][1][0][0])  # reshuffled per epoch
    assert runs[0][0][0][1].shape == (4, 3, 8, 24, 24)


def test_distributed_ranks_partition_an_epoch(synth):
    samples = read_annotations(synth / "train.txt")
    ds = VideoDataset(samples, uniform(2), val_transform((0, 0, 0), (1, 1, 1), size=16, short_side=16), train=False)
    seen = []
    for rank in range(2):
        loader = build_loader(ds, 2, train=False, workers=0, rank=rank, world_size=2)
        seen += [i for b in loader for i in b["index"].tolist()]
    assert sorted(seen) == list(range(len(samples)))


def test_test_views_fold_clips_and_crops(index_video):
    t = MultiViewTransform((0, 0, 0), (1, 1, 1), size=48, short_side=48, crops=3)
    ds = VideoDataset([Sample(str(index_video), 0)], dense(4, 2, 2), t, train=False)
    assert ds[0]["video"].shape == (6, 3, 4, 48, 48)  # 2 clips x 3 crops


def test_synthetic_pairs_are_time_reversals():
    from vidapter.data.synthetic import ORDER_PAIRS, render_clip

    for a, b in ORDER_PAIRS:
        fa = render_clip(a, np.random.default_rng(5), 32, 8)
        fb = render_clip(b, np.random.default_rng(5), 32, 8)
        np.testing.assert_array_equal(fa[::-1], fb)
        assert not np.array_equal(fa[0], fa[-1])


def test_data_cli_synth_and_check(tmp_path, broken, capsys):
    assert main(["data", "synth", str(tmp_path / "s"), "--train", "1", "--val", "1", "--test", "0", "--size", "32",
                 "--frames", "8", "--workers", "1"]) == 0  # fmt: skip
    lines = (tmp_path / "s" / "train.txt").read_text().splitlines()
    assert len(lines) == len(CLASSES) and lines[0] == "train/move_right/00000.mp4 0"
    assert main(["data", "check", str(tmp_path / "s" / "train.txt"), "--workers", "1"]) == 0
    good, files = broken
    listing = tmp_path / "bad.txt"
    listing.write_text("".join(f"{p} 0\n" for p in [good, *files.values()]))
    assert main(["data", "check", str(listing), "--workers", "2", "--report", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert f"{len(files) + 1 - len(files)}/{len(files) + 1} readable" in out
    assert "corrupt.mp4: decoding failed" in out and "audio.m4a: no video stream" in out

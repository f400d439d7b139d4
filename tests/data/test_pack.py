"""Training-ready storage: every layout keeps every frame in order, has the structure it promises, resumes without
redoing work, reports what failed, and the JPEG reader agrees with Pillow."""

from __future__ import annotations

import json
import shutil
import struct

import av
import numpy as np
import pytest
from videos import index_frames, read_index

from vidapter.cli import main
from vidapter.data.datasets import AnnotationError
from vidapter.data.decode import FrameFolder, PyAVVideo, VideoError, open_video
from vidapter.data.pack import LAYOUTS, LOG, MANIFEST, find_manifest, pack_dataset, pack_tree, pack_video
from vidapter.data.synthetic import write_mp4

PICKS = [0, 7, 33, 64, 100, 119]


def _read(path, layout, n=None):
    return FrameFolder(path, n) if layout == "jpeg" else open_video(path)


def _pict_types(path) -> list[str]:
    with av.open(str(path)) as c:
        return [av.video.frame.PictureType(f.pict_type).name for f in c.decode(video=0)]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_keeps_every_frame_in_order(index_video, tmp_path, layout):
    dst = tmp_path / ("v" if layout == "jpeg" else "v.mp4")
    info = pack_video(index_video, dst, layout, short_side=32, crf=18)
    assert info["frames"] == 120 and info["fps"] == 25.0 and info["bytes"] > 0
    with _read(dst, layout, 120) as v:
        assert v.num_frames == 120
        frames = v.get(PICKS[::-1] + [64])  # out of order and repeated, as samplers ask
    assert frames.shape == (7, 32, 86, 3)
    assert [read_index(f) for f in frames] == PICKS[::-1] + [64]
    if layout == "jpeg":
        assert sorted(p.name for p in dst.iterdir())[:2] == ["img_00001.jpg", "img_00002.jpg"]
        return


@pytest.mark.parametrize("layout", ["sparse", "gop8", "gop16", "intra"])
def test_h264_layouts_have_the_structure_they_promise(tmp_path, layout):
    """Keyframes and B-frames as each layout's x264 settings promise, on smooth motion (no scene cuts)."""
    x = np.arange(96)[None, :, None]
    frames = np.stack([np.broadcast_to((x + 2 * t) % 96 * 2, (64, 96, 3)) for t in range(60)]).astype(np.uint8)
    write_mp4(tmp_path / "smooth.mp4", frames, fps=25, crf=18, gop=250)
    pack_video(tmp_path / "smooth.mp4", tmp_path / "p.mp4", layout, short_side=64)
    types = "".join(_pict_types(tmp_path / "p.mp4"))
    with av.open(str(tmp_path / "p.mp4")) as c:
        packets = sorted((p for p in c.demux(video=0) if p.size), key=lambda p: p.pts)
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    if layout == "intra":
        assert keys == list(range(60)) and set(types) == {"I"}
    elif layout.startswith("gop"):
        assert keys == list(range(0, 60, int(layout[3:]))) and "B" not in types
    else:  # an anchor, then 16 B-frames that no frame references (the run before the end shorter)
        assert keys == [0] and types[:35] == "I" + "B" * 16 + "P" + "B" * 16 + "P"


def test_packing_applies_rotation_metadata(tmp_path):
    """A phone video's display matrix turns frames at read time; packed files store them upright instead."""
    write_mp4(tmp_path / "r0.mp4", index_frames(20), fps=25)
    data = bytearray((tmp_path / "r0.mp4").read_bytes())
    i = data.index(b"tkhd")
    off = i + 8 + (32 if data[i + 4] == 1 else 20) + 16  # tkhd's matrix
    data[off : off + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    (tmp_path / "r90.mp4").write_bytes(data)
    pack_video(tmp_path / "r90.mp4", tmp_path / "packed.mp4", "sparse", short_side=48, crf=10)
    with open_video(tmp_path / "r90.mp4") as a, open_video(tmp_path / "packed.mp4") as b:
        upright, packed = a.get([3, 11]), b.get([3, 11])
    assert upright.shape == packed.shape == (2, 128, 48, 3)
    assert np.abs(upright.astype(int) - packed.astype(int)).mean() < 4


def _dataset(tmp_path, index_video):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    for name in ("x.mp4", "y.webm"):
        shutil.copy(index_video, src / "a" / name)
    (src / "a" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 300)
    (src / "train.txt").write_text("a/x.mp4 0\na/broken.mp4 1\na/y.webm 1\n")
    (src / "val.txt").write_text("a/y.webm 1\na/missing.mp4 0\n")
    return src


@pytest.mark.parametrize("layout", ["sparse", "jpeg"])
def test_pack_dataset_writes_lists_manifest_and_resumes(index_video, tmp_path, layout):
    src = _dataset(tmp_path, index_video)
    out = tmp_path / "packed"
    lists = [src / "train.txt", src / "val.txt"]
    m = pack_dataset(lists, None, out, layout=layout, short_side=32, workers=2, progress=False)
    assert m["files"] == 2 and m["frames"] == 240 and set(m["failed"]) == {"a/broken.mp4", "a/missing.mp4"}
    assert m["hours"] == pytest.approx(2 * 120 / 25 / 3600) and m["bytes"] > 0 and m["source_bytes"] > m["bytes"] / 50
    assert "cannot re-encode" in m["failed"]["a/broken.mp4"]
    assert json.loads((out / MANIFEST).read_text()) == m
    if layout == "jpeg":
        assert (out / "train.txt").read_text() == "a/x 120 0\na/y 120 1\n"
        from vidapter.data.datasets import read_annotations

        s = read_annotations(out / "train.txt", fmt="rawframes")[1]
        with FrameFolder(s.path, s.num_frames) as v:
            assert read_index(v.get([77])[0]) == 77
    else:
        assert (out / "train.txt").read_text() == "a/x.mp4 0\na/y.webm 1\n"  # same paths: a drop-in data.root
        assert (out / "val.txt").read_text() == "a/y.webm 1\n"
        with PyAVVideo(out / "a" / "y.webm") as v:  # an MP4 container under the source's name
            assert v.num_frames == 120
    assert m["lists"]["train.txt"]["source_sha256"] != m["lists"]["train.txt"]["sha256"]
    assert m["lists"]["train.txt"]["entries"] == 2

    # a second run skips both done files (no rewrite), retries the failures, and reports the same
    done = out / ("a/x" if layout == "jpeg" else "a/x.mp4")
    stamp = done.stat().st_mtime_ns
    log_lines = len((out / LOG).read_text().splitlines())
    again = pack_dataset(lists, None, out, layout=layout, short_side=32, workers=1, progress=False)
    assert done.stat().st_mtime_ns == stamp
    assert len((out / LOG).read_text().splitlines()) == log_lines + 2  # only the two failures again
    assert {k: again[k] for k in ("files", "frames", "bytes", "failed")} == {
        k: m[k] for k in ("files", "frames", "bytes", "failed")
    }


def test_interrupted_pack_finishes_without_redoing(index_video, tmp_path):
    """A kill can leave a temporary output, or a finished output whose log line was never written."""
    src = _dataset(tmp_path, index_video)
    out = tmp_path / "packed"
    pack_tree(["a/x.mp4"], src, out, short_side=32, progress=False)
    (out / LOG).unlink()  # killed after the rename, before the log line
    (out / "a" / ".y.webm.part").write_bytes(b"half a file")  # killed while writing
    stamp = (out / "a" / "x.mp4").stat().st_mtime_ns
    entries = pack_tree(["a/x.mp4", "a/y.webm"], src, out, short_side=32, progress=False)
    assert (out / "a" / "x.mp4").stat().st_mtime_ns == stamp
    assert entries["a/x.mp4"]["frames"] == entries["a/y.webm"]["frames"] == 120
    assert not (out / "a" / ".y.webm.part").exists()


def test_jpeg_reader_matches_pillow_and_names_a_bad_frame(index_video, tmp_path):
    pack_video(index_video, tmp_path / "f", "jpeg", short_side=48, quality=90)
    fast = FrameFolder(tmp_path / "f", 120).get([5, 90])
    slow = FrameFolder(tmp_path / "f", 120, template="img_{:05d}.JPG")  # Pillow path: same files, other template
    slow._jpeg = False
    slow.template = "img_{:05d}.jpg"
    ref = slow.get([5, 90])
    assert fast.shape == ref.shape == (2, 48, 128, 3)
    assert np.abs(fast.astype(int) - ref.astype(int)).max() <= 2  # two libjpeg builds: rounding of the upsampler
    (tmp_path / "f" / "img_00091.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match=r"img_00091\.jpg: unreadable frame"):
        FrameFolder(tmp_path / "f", 120).get([5, 90])


def test_cli_pack_and_manifest_lookup(index_video, tmp_path, capsys):
    src = _dataset(tmp_path, index_video)
    out = tmp_path / "packed"
    rc = main(["data", "pack", str(src / "val.txt"), "--out", str(out), "--short-side", "32", "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0 and "a/missing.mp4: no such file" in text and "1 of 2 videos packed" in text
    assert find_manifest(None, tmp_path, out) == out / MANIFEST
    with pytest.raises(SystemExit):
        main(["data", "pack", str(src / "val.txt"), "--out", str(out), "--layout", "png"])


@pytest.mark.parametrize(
    "rel, suffix",
    [
        ("../outside/x.mp4", ".txt"),
        ("a/../../outside/x.mp4", ".txt"),
        ("{tmp}/outside/x.mp4", ".txt"),
        ("../outside/x.mp4", ".csv"),
    ],  # fmt: skip
    ids=["up", "nested-up", "absolute", "csv-up"],
)
def test_a_list_path_leaving_the_output_folder_is_refused(tmp_path, rel, suffix):
    """Nothing is written outside --out: a path that climbs above the root or is absolute (its packed copy would be
    the source itself) stops the pack before any work, naming the list's line."""
    src, out = tmp_path / "src", tmp_path / "packed"
    (tmp_path / "outside").mkdir()
    src.mkdir()
    write_mp4(tmp_path / "outside" / "x.mp4", np.zeros((4, 16, 16, 3), np.uint8), fps=25)
    rel, sep = rel.format(tmp=tmp_path), "," if suffix == ".csv" else " "
    listing = src / f"train{suffix}"
    listing.write_text(f"a/ok.mp4{sep}0\n{rel}{sep}1\n")
    with pytest.raises(AnnotationError, match=f"{listing}:2: '{rel}' would be written outside the output folder"):
        pack_dataset([listing], None, out, short_side=16, workers=1, progress=False)
    assert not out.exists() and [p.name for p in (tmp_path / "outside").iterdir()] == ["x.mp4"]
    with pytest.raises(AnnotationError, match="kinetics.txt:9: '../x.mp4' would be written outside"):
        pack_tree(["a/ok.mp4", "../x.mp4"], src, out, progress=False, origins={"../x.mp4": "kinetics.txt:9"})

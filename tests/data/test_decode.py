"""Decoding: exact frame indices for every backend, identical frames across backends, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from videos import INDEX_FRAMES, read_index

from vidapter.data.decode import VideoError, open_video, read_all_naive, resized, verify_video

REQUEST = [117, 3, 3, 50, 49, 0, 119, 64, 12, 11, 13, 60, 61, 24]


def _backend(name):
    if name == "decord":
        pytest.importorskip("decord")
    if name == "torchcodec":
        pytest.importorskip("torchcodec")
    return name


@pytest.mark.parametrize("backend", ["pyav", "decord", "torchcodec"])
def test_frame_indices_are_exact(index_video, backend):
    try:
        video = open_video(index_video, _backend(backend))
    except ImportError as e:  # torchcodec without FFmpeg shared libraries on this machine
        pytest.skip(str(e))
    with video:
        assert video.num_frames == INDEX_FRAMES
        frames = video.get(REQUEST)
    assert frames.shape == (len(REQUEST), 48, 128, 3) and frames.dtype == np.uint8
    assert [read_index(f) for f in frames] == REQUEST


@pytest.mark.parametrize("backend", ["pyav", "decord", "torchcodec"])
@pytest.mark.parametrize("window", [5, 8, 12])
def test_consecutive_windows_from_one_reader(index_video, backend, window):
    """Windows read one after another from one open reader (what prediction over windows does): the frames a
    decoder held already when the previous window ended are not lost."""
    try:
        video = open_video(index_video, _backend(backend))
    except ImportError as e:
        pytest.skip(str(e))
    with video:
        got = [read_index(f) for s in range(0, INDEX_FRAMES, window)
               for f in video.get(list(range(s, min(s + window, INDEX_FRAMES))))]  # fmt: skip
    assert got == list(range(INDEX_FRAMES))


def test_pyav_equals_naive_full_decode(index_video):
    naive = read_all_naive(index_video)
    with open_video(index_video) as v:
        np.testing.assert_array_equal(v.get(REQUEST), naive[REQUEST])
        np.testing.assert_array_equal(v.get(list(range(INDEX_FRAMES))), naive)  # forward without seeking


@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
def test_backends_return_the_same_frames(index_video, backend):
    try:
        other = open_video(index_video, _backend(backend))
    except ImportError as e:
        pytest.skip(str(e))
    with open_video(index_video) as v, other:
        a, b = v.get(REQUEST), other.get(REQUEST)
    # the same decoder family; colour conversion may differ by rounding only
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


@pytest.mark.parametrize(
    "kind, message",
    [("missing", "no such file"), ("empty", "empty file"), ("truncated", "not a readable video"),
     ("not_a_video", "not a readable video"), ("no_video_stream", "no video stream")],
)  # fmt: skip
def test_unreadable_files_name_the_file_and_reason(broken, kind, message):
    _, files = broken
    with pytest.raises(VideoError, match=message) as e:
        open_video(files[kind])
    assert str(files[kind]) in str(e.value) and "\n" not in str(e.value)


def test_strict_decoding_catches_a_corrupt_frame(broken):
    good, files = broken
    assert verify_video(good) == 64
    with pytest.raises(VideoError, match="decoding failed"):
        verify_video(files["corrupt_frame"])
    with open_video(files["corrupt_frame"]) as v:  # default: concealed, like decord and the reference
        assert v.get([0, 63]).shape[0] == 2


def test_out_of_range_index(index_video):
    with open_video(index_video) as v, pytest.raises(VideoError, match=r"outside \[0, 120\)"):
        v.get([120])


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown video backend 'opencv'"):
        open_video("x.mp4", "opencv")


@pytest.mark.parametrize(("w", "h"), [(128, 48), (48, 128), (1280, 720), (341, 256), (100, 100)])
def test_decode_resize_geometry_is_torchvisions(w, h):
    import torch
    from torchvision.transforms import v2

    out = v2.Resize(32, antialias=True)(torch.zeros(1, 3, h, w))
    assert resized(w, h, 32) == (out.shape[-1], out.shape[-2])


def test_decode_resize_matches_decode_then_resize(index_video):
    """Resizing in the colour conversion: torchvision's geometry, the same frames, pixels within rounding of a
    decode-then-Resize(antialias) (the bars' edges differ most; the means agree)."""
    import torch
    from torchvision.transforms import v2

    with open_video(index_video) as full, open_video(index_video, short_side=24) as small:
        ref = v2.Resize(24, antialias=True)(torch.from_numpy(full.get(REQUEST)).permute(0, 3, 1, 2))
        out = torch.from_numpy(small.get(REQUEST)).permute(0, 3, 1, 2)
    assert out.shape == ref.shape == (len(REQUEST), 3, 24, 64)
    assert [read_index(f.numpy()) for f in out] == REQUEST
    diff = (out.float() - ref.float()).abs()
    assert diff.mean() < 4 and abs(out.float().mean() - ref.float().mean()) < 2


def test_decode_resize_needs_pyav(index_video):
    with pytest.raises(ValueError, match="resizing while decoding is available with the pyav backend only"):
        open_video(index_video, "decord", short_side=24)

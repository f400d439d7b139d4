"""``vidapter features``: sliding windows, one array per video equal to the model's own embedding of each window,
features.json, resuming, unreadable videos listed and left out."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vidapter.classifier import load_model
from vidapter.cli import main
from vidapter.data.build import clip_transform
from vidapter.data.decode import open_video
from vidapter.features import window_frames, window_spans


def test_windows_cover_the_video():
    assert window_spans(40, 16, 8) == [(0, 16), (8, 24), (16, 32), (24, 40)]
    assert window_spans(45, 16, 8) == [(0, 16), (8, 24), (16, 32), (24, 40), (32, 45)]  # the rest: one more
    assert window_spans(10, 16, 8) == [(0, 10)]  # shorter than a window: one over all of it
    assert window_frames(0, 16, 8).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]  # segment centres
    assert window_frames(8, 10, 4).tolist() == [8, 8, 9, 9]


def _window_clip(cfg, model, path, span):
    """The window's clip built by hand: its segment centres decoded, the test transform's centre view."""
    with open_video(path) as video:
        frames = torch.from_numpy(video.get(window_frames(*span, cfg.model.num_frames).tolist()))
    facts = model.backbone.facts
    return clip_transform(cfg.data, "test", facts.mean, facts.std)(frames)[:1]


def test_features_equal_the_models_embedding_and_resume(model_dir, data, tmp_path, capsys):
    videos, root = tmp_path / "videos.txt", tmp_path / "videos"
    picks = ["test/grow/00000.mp4", "test/shrink/00000.mp4", "test/rotate_cw/00000.mp4"]
    for p in picks:  # file names that repeat across class folders
        (root / p).parent.mkdir(parents=True)
        shutil.copy(data / p, root / p)
    bad = root / "test" / "broken.mp4"
    bad.write_bytes((data / picks[0]).read_bytes()[:300])  # a truncated file
    videos.write_text("".join(f"{p} 0\n" for p in picks))
    out = tmp_path / "feat"
    args = ["features", str(model_dir), str(videos), str(bad), "--root", str(root), "--out", str(out), "--window",
            "8", "--stride", "4", "--name", "path", "--workers", "1", "--quiet"]  # fmt: skip
    assert main(args) == 1  # one unreadable video: said, the others written
    assert "1 unreadable" in capsys.readouterr().out
    index = json.loads((out / "features.json").read_text())
    assert index["complete"] and index["unreadable"][0]["path"] == str(bad) and len(index["videos"]) == 3
    entry = index["videos"]["grow__00000"]
    assert entry["spans"] == [[0, 8], [4, 12], [8, 16]] and entry["frames"] == 16 and entry["fps"] == 8.0
    assert entry["window_s"] == 1.0 and entry["stride_s"] == 0.5
    arr = np.load(out / "grow__00000.npy")
    model, cfg, _ = load_model(model_dir)
    assert arr.dtype == np.float32 and arr.shape == (3, model.backbone.width) and index["row_shape"] == ["windows", 96]
    with torch.no_grad():
        want = torch.cat([model.eval().embed(_window_clip(cfg, model, data / picks[0], s)) for s in entry["spans"]])
    np.testing.assert_allclose(arr, want.numpy(), atol=1e-5, rtol=0)

    (out / "shrink__00000.npy").unlink()  # interrupted: one array missing; the others are kept, not redone
    kept = (out / "rotate_cw__00000.npy").stat().st_mtime_ns
    assert main(args) == 1
    assert (out / "shrink__00000.npy").exists() and (out / "rotate_cw__00000.npy").stat().st_mtime_ns == kept
    assert main([*args[:-1], "--feature", "frames", "--quiet"]) == 2  # other settings: refused, the folder kept
    assert "made with feature 'video' (now 'frames')" in capsys.readouterr().err

    shutil.rmtree(out)
    assert main([*args, "--feature", "block:1"]) == 1
    block = np.load(out / "grow__00000.npy")
    with torch.no_grad():
        clip = _window_clip(cfg, model, data / picks[0], (0, 8))
        torch.testing.assert_close(torch.from_numpy(block[0]), model.block_output(clip, 1).mean(dim=(1, 2))[0])
    assert main(["features", str(model_dir), str(data / picks[0]), "--out", str(tmp_path / "f2"), "--feature",
                 "frames", "--window", "8", "--quiet"]) == 0  # fmt: skip
    assert np.load(tmp_path / "f2" / "00000.npy").shape == (3, 8, 96)  # stride: half the window
    with pytest.raises(Exception, match="same name '00000'"):
        main(["--debug", "features", str(model_dir), str(data / picks[0]), str(data / picks[1]), "--out",
              str(tmp_path / "f3")])  # fmt: skip

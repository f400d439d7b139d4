"""`vidapter data prepare`: each dataset's native annotation files -> list files + class names."""

from __future__ import annotations

import json

import pytest

from vidapter.cli import main
from vidapter.data.datasets import AnnotationError, read_annotations, read_class_names
from vidapter.data.prepare import hmdb51, kinetics, ssv2, ucf101


def _lines(path):
    return path.read_text().splitlines()


def test_kinetics(tmp_path):
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nzumba,abc,10,20,train\nabseiling,xyz,0,10,train\n"
    )
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nzumba,q1,5,15,val\n")
    assert main(["data", "prepare", "kinetics", "--src", str(tmp_path / "train.csv"), str(tmp_path / "validate.csv"),
                 "--out-dir", str(tmp_path / "out")]) == 0  # fmt: skip
    assert read_class_names(tmp_path / "out" / "classes.txt") == ["abseiling", "zumba"]
    assert _lines(tmp_path / "out" / "train.txt") == ["train/abc_000010_000020.mp4 1", "train/xyz_000000_000010.mp4 0"]
    assert _lines(tmp_path / "out" / "validate.txt") == ["val/q1_000005_000015.mp4 1"]
    classes, lists = kinetics([tmp_path / "train.csv"], template="{label}/{youtube_id}.mp4")
    assert lists["train"][0] == ("zumba/abc.mp4", 1)


def test_kinetics_missing_columns(tmp_path):
    (tmp_path / "k.csv").write_text("name,id\n")
    with pytest.raises(AnnotationError, match=r"k.csv:1: expected columns"):
        kinetics([tmp_path / "k.csv"])


def test_ssv2(tmp_path):
    (tmp_path / "labels.json").write_text(
        json.dumps({"Pushing something": "1", "Holding something next to something": "0"})
    )
    split = [
        {"id": "78687", "label": "holding a cup next to a pen", "template": "Holding [something] next to [something]"}
    ]
    (tmp_path / "something-something-v2-train.json").write_text(json.dumps(split))
    classes, lists = ssv2(tmp_path / "labels.json", [tmp_path / "something-something-v2-train.json"])
    assert classes == ["Holding something next to something", "Pushing something"]
    assert lists == {"train": [("78687.webm", 0)]}
    (tmp_path / "bad.json").write_text(json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(AnnotationError, match=r"entry 0: template 'Juggling something' is not in"):
        ssv2(tmp_path / "labels.json", [tmp_path / "bad.json"])


def test_diving48(tmp_path):
    (tmp_path / "vocab.json").write_text(
        json.dumps([["Back", "15som", "05Twis", "FREE"], ["Forward", "1som", "NoTwis", "PIKE"]])
    )
    (tmp_path / "Diving48_V2_train.json").write_text(json.dumps([{"vid_name": "-mmq0PT-u8k_0", "label": 1}]))
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps([{"vid_name": "x", "label": 2}]))
    assert main(["data", "prepare", "diving48", "--src", str(tmp_path / "vocab.json"),
                 str(tmp_path / "Diving48_V2_train.json"), "--out-dir", str(tmp_path / "o")]) == 0  # fmt: skip
    assert _lines(tmp_path / "o" / "train.txt") == ["-mmq0PT-u8k_0.mp4 1"]
    assert read_class_names(tmp_path / "o" / "classes.txt")[0] == "Back_15som_05Twis_FREE"
    rc = main(["data", "prepare", "diving48", "--src", str(tmp_path / "vocab.json"),
               str(tmp_path / "Diving48_V2_test.json"), "--out-dir", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2


def test_ucf101(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (tmp_path / "trainlist01.txt").write_text("Archery/v_Archery_g08_c01.avi 2\n")
    (tmp_path / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    classes, lists = ucf101(tmp_path, 1)
    assert classes == ["ApplyEyeMakeup", "Archery"]
    assert lists == {
        "train": [("Archery/v_Archery_g08_c01.avi", 1)],
        "test": [("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0)],
    }


def test_hmdb51_and_the_lists_read_back(tmp_path):
    (tmp_path / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (tmp_path / "cartwheel_test_split1.txt").write_text("d.avi 1\n")
    classes, lists = hmdb51(tmp_path, 1)
    assert classes == ["brush_hair", "cartwheel"]
    assert lists["train"] == [("brush_hair/a.avi", 0), ("cartwheel/d.avi", 1)] and lists["test"] == [
        ("brush_hair/b.avi", 0)
    ]
    main(["data", "prepare", "hmdb51", "--src", str(tmp_path), "--out-dir", str(tmp_path / "o")])
    samples = read_annotations(tmp_path / "o" / "train.txt", root="/videos", num_classes=2)
    assert [(s.path, s.label) for s in samples] == [("/videos/brush_hair/a.avi", 0), ("/videos/cartwheel/d.avi", 1)]
    (tmp_path / "x_test_split2.txt").write_text("a.avi 3\n")
    with pytest.raises(AnnotationError, match=r"x_test_split2.txt:1: expected 'video.avi 0\|1\|2'"):
        hmdb51(tmp_path, 2)


def test_resize_keeps_every_frame_in_order(index_video, tmp_path):
    from videos import read_index

    from vidapter.data.decode import open_video
    from vidapter.data.pack import pack_video, resized_shape

    assert resized_shape(340, 256, 256) == (340, 256) and resized_shape(1280, 720, 256) == (456, 256)
    assert pack_video(index_video, tmp_path / "small.mp4", "h264", short_side=32, crf=18)["frames"] == 120
    with open_video(tmp_path / "small.mp4") as v:
        frames = v.get([0, 7, 64, 119])
    assert frames.shape == (4, 32, 86, 3)
    assert [read_index(f) for f in frames] == [0, 7, 64, 119]


def test_prepare_with_resize(index_video, tmp_path):
    import shutil

    src = tmp_path / "videos"
    (src / "brush_hair").mkdir(parents=True)
    shutil.copy(index_video, src / "brush_hair" / "a.avi")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "brush_hair_test_split1.txt").write_text("a.avi 1\nmissing.avi 2\n")
    args = ["--src", str(tmp_path / "splits"), "--out-dir", str(tmp_path / "lists"), "--resize-short", "32"]
    rc = main(["data", "prepare", "hmdb51", *args, "--video-root", str(src), "--resized-root", str(tmp_path / "small")])
    assert rc == 1  # one listed video is missing: reported, the rest is done
    assert (tmp_path / "small" / "brush_hair" / "a.avi").exists()

"""The few-shot and base-to-novel protocols' lists, the label CSVs other codebases ship, and the HMDB51 label order."""

from __future__ import annotations

import pytest

from vidapter.cli import main
from vidapter.data.datasets import AnnotationError, read_annotations, read_class_names
from vidapter.data.prepare import check_class_names, hmdb51
from vidapter.data.protocols import base_novel_classes, few_shot, harmonic_mean, list_entries, split_entries


def _list(tmp_path, counts: list[int], name: str = "train.txt"):
    lines = [f"c{c}/v {i}.mp4 {c}" for c, n in enumerate(counts) for i in range(n)]
    path = tmp_path / name
    path.write_text("# a comment\n" + "\n".join(lines) + "\n\n")
    return path


def test_few_shot_sets_are_nested_exact_and_deterministic(tmp_path):
    entries = list_entries(_list(tmp_path, [20, 17, 30]))
    sets = few_shot(entries, [2, 4, 8, 16], seed=3)
    for k, chosen in sets.items():
        assert sorted(label for _, label in chosen).count(0) == k and {lbl for _, lbl in chosen} == {0, 1, 2}
        assert len(chosen) == 3 * k and chosen == sorted(chosen, key=entries.index)  # file order kept
    assert all(set(sets[a]) <= set(sets[b]) for a, b in ((2, 4), (4, 8), (8, 16)))
    assert few_shot(entries, [16, 4], seed=3)[4] == sets[4]  # the same draw whatever else is asked
    assert few_shot(entries, [4], seed=4)[4] != sets[4]
    # one class's draw does not depend on the others'
    fewer = [e for e in entries if e[1] != 2]
    assert [e for e in few_shot(fewer, [4], seed=3)[4]] == [e for e in sets[4] if e[1] != 2]
    with pytest.raises(AnnotationError, match="class 1 has 17 videos, fewer than 18 shots"):
        few_shot(entries, [18], seed=0)


def test_fewshot_command_writes_lists_that_read_back(tmp_path, capsys):
    src = _list(tmp_path, [5, 6])
    assert main(["data", "fewshot", str(src), "--shots", "2", "4", "--seed", "1", "--out", str(tmp_path / "o")]) == 0
    samples = read_annotations(tmp_path / "o" / "train_4shot_seed1.txt", num_classes=2)
    assert len(samples) == 8 and samples[0].path.endswith(".mp4") and " " in samples[0].path  # spaces in paths kept
    assert "2 shots: 4 videos" in capsys.readouterr().out


def test_base_novel_is_the_least_frequent_half(tmp_path):
    """Counts 3, 1, 2, 1, 5: ranked by (count, id) 1, 3, 2, 0, 4; the first two novel, in that order."""
    train = list_entries(_list(tmp_path, [3, 1, 2, 1, 5]))
    base, novel = base_novel_classes(train, 5)
    assert novel == [1, 3] and base == [2, 0, 4]
    part = split_entries(train, base)
    assert [label for _, label in part] == [1, 1, 1, 0, 0, 2, 2, 2, 2, 2] and part[3][0] == "c2/v 0.mp4 0"
    csv_part = split_entries([("a.mp4,3,0.5,2.0", 3)], novel, is_csv=True)
    assert csv_part == [("a.mp4,1,0.5,2.0", 1)]
    assert harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.32 / 1.2) and harmonic_mean(0, 0) == 0


def test_base_novel_command(tmp_path, capsys):
    train = _list(tmp_path, [3, 1, 2, 1, 5])
    test = _list(tmp_path, [1, 1, 1, 1, 1], "test.txt")
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\ne\n")
    assert main(["data", "base-novel", str(train), "--classes", str(tmp_path / "classes.txt"), "--lists", str(test),
                 "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    o = tmp_path / "o"
    assert read_class_names(o / "novel_classes.txt") == ["b", "d"] and read_class_names(o / "base_classes.txt") == [
        "c", "a", "e"]  # fmt: skip
    novel = read_annotations(o / "test_novel.txt", num_classes=2)
    assert [(s.path.split("/")[-2], s.label) for s in novel] == [("c1", 0), ("c3", 1)]
    assert len(read_annotations(o / "train_base.txt", num_classes=3)) == 10


def test_label_csvs_as_other_codebases_ship_them(tmp_path):
    path = tmp_path / "hmdb_51_labels.csv"
    path.write_text("id,name\n0,brush hair\n1,cartwheel\n")
    assert read_class_names(path) == ["brush hair", "cartwheel"]
    path.write_text("id,name\n0,brush hair\n2,cartwheel\n")
    with pytest.raises(AnnotationError, match=r"hmdb_51_labels.csv:3: expected 'id,name' with id 1, got '2,cartwheel'"):
        read_class_names(path)


def test_hmdb51_order_and_the_swapped_label_file(tmp_path):
    """HMDB51's released label CSV (X-CLIP's, ViFi-CLIP's) has 20 kick ball, 21 kick; the videos' folders, and every
    split file those codebases ship, have kick first: the check names the swap."""
    splits = tmp_path / "splits"
    splits.mkdir()
    for cls in ("sword_exercise", "kick_ball", "sword", "kick"):
        (splits / f"{cls}_test_split1.txt").write_text(f"Clip_{cls}_f_cm_np1_ba_med_0.avi 1\n")
    classes, lists = hmdb51(splits, 1)
    assert classes == ["kick", "kick_ball", "sword", "sword_exercise"]
    check_class_names(["kick", "kick ball", "sword", "sword exercise"], classes, lists, "ok.csv")
    swapped = tmp_path / "hmdb_51_labels.csv"
    swapped.write_text("id,name\n0,kick ball\n1,kick\n2,sword exercise\n3,sword\n")
    with pytest.raises(AnnotationError, match="class 0 is 'kick ball', but the videos of label 0 are in folder 'kick'"):
        check_class_names(read_class_names(swapped), classes, lists, str(swapped))
    lists["train"][0] = (lists["train"][0][0], 1)  # a video labelled against its name
    with pytest.raises(AnnotationError, match="Clip_kick_f_cm_np1_ba_med_0.avi is labelled 1 .* its name says 'kick'"):
        check_class_names(classes, classes, lists, "x")
    assert main(["data", "prepare", "hmdb51", "--src", str(splits), "--out-dir", str(tmp_path / "o"), "--classes",
                 str(swapped)]) == 2  # fmt: skip

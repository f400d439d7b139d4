"""``vidapter data prepare``: native annotation files of the paper's datasets -> list files + class names.

Each converter returns ``(class_names, {split: [(relative_path, label)]})``; ``write_lists`` writes ``{split}.txt``
(``path label``) and ``classes.txt``. Paths are relative to the dataset's video folder as usually downloaded; the
Kinetics layout is a template because download tools differ.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from vidapter.data.datasets import AnnotationError
from vidapter.files import write_text

Lists = dict[str, list[tuple[str, int]]]
KINETICS_TEMPLATE = "{split}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


def kinetics(csv_files: list[str | os.PathLike], template: str = KINETICS_TEMPLATE) -> tuple[list[str], Lists]:
    """Kinetics-400/700 CSVs (``label,youtube_id,time_start,time_end,split``); classes = sorted label names."""
    rows: dict[str, list[dict]] = {}
    for f in csv_files:
        with open(f, newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"label", "youtube_id", "time_start", "time_end"}
            if not need <= set(reader.fieldnames or []):
                raise AnnotationError(f"{f}:1: expected columns {sorted(need)}, got {reader.fieldnames}")
            rows[Path(f).stem] = [dict(r, _line=str(n)) for n, r in enumerate(reader, 2)]
    classes = sorted({r["label"] for rs in rows.values() for r in rs})
    lists: Lists = {}
    for split, rs in rows.items():
        out = []
        for r in rs:
            try:
                ts, te = int(float(r["time_start"])), int(float(r["time_end"]))
            except ValueError:
                raise AnnotationError(f"{split}.csv:{r['_line']}: time_start/time_end must be numbers") from None
            path = template.format(split=r.get("split") or split, label=r["label"], youtube_id=r["youtube_id"],
                                   time_start=ts, time_end=te)  # fmt: skip
            out.append((path, classes.index(r["label"])))
        lists[split] = out
    return classes, lists


def _load_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def ssv2(labels_json: str | os.PathLike, split_jsons: list[str | os.PathLike]) -> tuple[list[str], Lists]:
    """Something-Something v2: labels JSON (template -> index) and split JSONs (id, template); videos ``{id}.webm``."""
    index = {k: int(v) for k, v in _load_json(labels_json).items()}
    classes = [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])]
    lists: Lists = {}
    for f in split_jsons:
        out = []
        for n, entry in enumerate(_load_json(f)):
            if "id" not in entry or "template" not in entry:
                raise AnnotationError(f"{f}: entry {n} has no 'id'/'template' (test splits carry no labels)")
            name = entry["template"].replace("[", "").replace("]", "")
            if name not in index:
                raise AnnotationError(f"{f}: entry {n}: template {name!r} is not in {labels_json}")
            out.append((f"{entry['id']}.webm", index[name]))
        lists[Path(f).stem.split("-")[-1]] = out
    return classes, lists


def diving48(vocab_json: str | os.PathLike, split_jsons: list[str | os.PathLike]) -> tuple[list[str], Lists]:
    """Diving-48: vocab JSON (list of 4-part labels) and split JSONs (vid_name, label); videos ``{vid_name}.mp4``."""
    classes = ["_".join(parts) for parts in _load_json(vocab_json)]
    lists: Lists = {}
    for f in split_jsons:
        out = []
        for n, e in enumerate(_load_json(f)):
            label = e.get("label")
            if not isinstance(label, int) or not 0 <= label < len(classes):
                raise AnnotationError(f"{f}: entry {n}: label {label!r} outside [0, {len(classes)})")
            out.append((f"{e['vid_name']}.mp4", label))
        lists["train" if "train" in Path(f).stem.lower() else "test"] = out
    return classes, lists


def ucf101(split_dir: str | os.PathLike, split: int = 1) -> tuple[list[str], Lists]:
    """UCF101 ``ucfTrainTestlist``: classInd.txt (1-based) and train/testlist0{split}.txt; labels become 0-based."""
    d = Path(split_dir)
    classes = []
    for n, line in enumerate((d / "classInd.txt").read_text().splitlines(), 1):
        if line.strip():
            idx, name = line.split()
            if int(idx) != len(classes) + 1:
                raise AnnotationError(f"{d / 'classInd.txt'}:{n}: expected index {len(classes) + 1}, got {idx}")
            classes.append(name)
    lists: Lists = {}
    for kind in ("train", "test"):
        f = d / f"{kind}list0{split}.txt"
        out = []
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            path = line.split()[0]
            cls = path.split("/")[0]
            if cls not in classes:
                raise AnnotationError(f"{f}:{n}: class folder {cls!r} is not in classInd.txt")
            out.append((path, classes.index(cls)))
        lists[kind] = out
    return classes, lists


def hmdb51(split_dir: str | os.PathLike, split: int = 1) -> tuple[list[str], Lists]:
    """HMDB51 split folder: ``{class}_test_split{k}.txt``, lines ``video.avi 0|1|2`` (unused/train/test); classes in
    the alphabetical order of their folders (ids 20 kick, 21 kick_ball, 44 sword, 45 sword_exercise)."""
    suffix = f"_test_split{split}.txt"
    # the standard order is the class folders' (alphabetical: "kick" before "kick_ball", "sword" before
    # "sword_exercise"), not the split files' names, which sort "kick_ball_test..." before "kick_test..."
    files = sorted(Path(split_dir).glob(f"*{suffix}"), key=lambda f: f.name[: -len(suffix)])
    if not files:
        raise AnnotationError(f"{split_dir}: no *_test_split{split}.txt files")
    classes = [f.name[: -len(suffix)] for f in files]
    lists: Lists = {"train": [], "test": []}
    for label, f in enumerate(files):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{f}:{n}: expected 'video.avi 0|1|2', got {line.strip()!r}")
            if parts[1] != "0":
                lists["train" if parts[1] == "1" else "test"].append((f"{classes[label]}/{parts[0]}", label))
    return classes, lists


def _key(name: str) -> str:
    """A class name compared across sources: lower case, "_" and spaces alike ("kick ball" = "kick_ball",
    "HandStandPushups" = "HandstandPushups")."""
    return name.replace("_", " ").lower()


def check_class_names(names: list[str], classes: list[str], lists: Lists, source: str) -> None:
    """``names`` (a label file you mean to train or evaluate with, e.g. a released label CSV) must name the classes
    in the order of the videos' folders. Each video's file name is checked too where it carries its action
    (HMDB51's ``..._{action}_...``, the longest match): a swapped pair fails here, naming the id."""
    if len(names) != len(classes):
        raise AnnotationError(f"{source}: {len(names)} class names, but the splits have {len(classes)} classes")
    for i, (name, cls) in enumerate(zip(names, classes, strict=True)):
        if _key(name) != _key(cls):
            raise AnnotationError(f"{source}: class {i} is {name!r}, but the videos of label {i} are in folder "
                                  f"{cls!r} (a swapped or reordered label list)")  # fmt: skip
    keys = sorted(((f"_{c}_".lower(), i) for i, c in enumerate(classes)), key=lambda x: -len(x[0]))
    for split, items in lists.items():
        for path, label in items:
            stem = Path(path).name.lower()
            hit = next((i for k, i in keys if k in stem), None)
            if hit is not None and hit != label:
                raise AnnotationError(f"{split}: {path} is labelled {label} ({classes[label]!r}) but its name says "
                                      f"{classes[hit]!r}")  # fmt: skip


def write_lists(classes: list[str], lists: Lists, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "classes.txt", "\n".join(classes) + "\n")
    paths = {}
    for split, items in lists.items():
        paths[split] = out / f"{split}.txt"
        write_text(paths[split], "".join(f"{p} {label}\n" for p, label in items))
    return paths

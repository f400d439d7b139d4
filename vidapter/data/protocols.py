"""The few-shot and base-to-novel protocols of CLIP-based video recognition, as list files.

``few_shot``: K videos per class, drawn per class from a seeded permutation, so the K sets are nested (the 2-shot
videos are among the 4-shot ones, ...) and one class's draw does not depend on the others. ViFi-CLIP's shipped
``train1_few_shot_{K}.txt`` files are one draw per K and are **not** nested; they are list files and read as they
are.

``base_novel``: the published rule (ViFi-CLIP's split files follow it exactly for UCF101 and HMDB51): classes sorted
by their number of training videos, ascending, ties in class-id order; the lower half (floor(C/2)) is novel, the rest
base; each class list is written in that sorted order and every given list is split into its base and novel videos
with labels re-indexed into those lists. Base accuracy is measured with the base names alone, novel with the novel
names alone, and their harmonic mean 2BN/(B+N) reported.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np

from vidapter.data.datasets import AnnotationError, read_annotations
from vidapter.files import write_text


def list_entries(path: str | os.PathLike, num_classes: int | None = None) -> list[tuple[str, int]]:
    """The (line as written, label) pairs of a list file (``path label``) or CSV list (``path,label[,start,end]``),
    in file order: blank lines, comments and a CSV header left out, as the readers skip them."""
    path = Path(path)
    samples = read_annotations(path, num_classes=num_classes)  # every error named by file and line
    lines = path.read_text().splitlines()
    if path.suffix == ".csv":
        rows = [(line, row) for line, row in zip(lines, csv.reader(lines), strict=True) if row]
        if rows and rows[0][1][0].strip().lower() in ("path", "video", "filename"):
            rows = rows[1:]
        kept = [line for line, _ in rows]
    else:
        kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [(line, s.label) for line, s in zip(kept, samples, strict=True)]


def few_shot(entries: list[tuple[str, int]], shots: list[int], seed: int) -> dict[int, list[tuple[str, int]]]:
    """{K: the entries of K videos per class} for each K of ``shots``, nested; file order kept within each set. A
    class with fewer than max(shots) videos is an error naming it."""
    if not shots or any(k < 1 for k in shots):
        raise AnnotationError(f"shots must be positive counts per class, got {shots}")
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(entries):
        by_class.setdefault(label, []).append(i)
    most = max(shots)
    short = {c: len(v) for c, v in sorted(by_class.items()) if len(v) < most}
    if short:
        c, n = next(iter(short.items()))
        raise AnnotationError(f"class {c} has {n} videos, fewer than {most} shots ({len(short)} classes short)")
    order = {c: [v[j] for j in np.random.default_rng([seed, c]).permutation(len(v))] for c, v in by_class.items()}
    return {k: [entries[i] for i in sorted(i for v in order.values() for i in v[:k])] for k in shots}


def base_novel_classes(train: list[tuple[str, int]], num_classes: int) -> tuple[list[int], list[int]]:
    """(base, novel) class ids, each in the rule's order: by training videos ascending, ties by class id; the
    first floor(C/2) novel."""
    counts = Counter(label for _, label in train)
    ranked = sorted(range(num_classes), key=lambda c: (counts[c], c))
    half = num_classes // 2
    return ranked[half:], ranked[:half]


def split_entries(entries: list[tuple[str, int]], classes: list[int], is_csv: bool = False) -> list[tuple[str, int]]:
    """The entries of ``classes``, labels re-indexed to positions in ``classes``: a list line's last field or a CSV
    row's second replaced, the rest of the line as written."""
    index = {c: i for i, c in enumerate(classes)}
    return [(_relabel(line, index[label], is_csv), index[label]) for line, label in entries if label in index]


def _relabel(line: str, label: int, is_csv: bool) -> str:
    if not is_csv:  # "path label": the path may hold spaces, the label is the last field
        return f"{line.rstrip().rsplit(None, 1)[0]} {label}"
    fields = next(csv.reader([line]))
    fields[1] = str(label)
    return ",".join(fields)


def write_entries(path: str | os.PathLike, entries: list[tuple[str, int]]) -> Path:
    path = Path(path)
    write_text(path, "".join(f"{line}\n" for line, _ in entries))
    return path


def harmonic_mean(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)

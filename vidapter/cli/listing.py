"""``vidapter presets``, ``vidapter backbones`` and ``vidapter methods``: a table of the registries, or JSON."""

from __future__ import annotations

import json

from vidapter.cli.common import no_overrides
from vidapter.summary import backbone_rows, method_rows, preset_rows

COLUMNS = {
    "presets": [("name", "{}"), ("backbone", "{}"), ("dataset", "{}"), ("frames", "{}"), ("classes", "{}"),
                ("trainable", "{:,}"), ("gflops_per_view", "{:.1f}")],
    "backbones": [("name", "{}"), ("width", "{}"), ("depth", "{}"), ("heads", "{}"), ("patch", "{}"),
                  ("image_size", "{}"), ("activation", "{}"), ("tokens", "{}"), ("feature", "{}"), ("licence", "{}"),
                  ("weights", "{}")],
    "methods": [("name", "{}"), ("paper", "{}"), ("trains", "{}"), ("merges", "{}"), ("official", "{}")],
}  # fmt: skip
ROWS = {"presets": preset_rows, "backbones": backbone_rows, "methods": method_rows}
HELP = {
    "presets": "the named recipes: backbone, dataset, frames, classes, trainable, GFLOPs/view",
    "backbones": "the image backbone rows and the weight names each accepts",
    "methods": "the adaptation methods: paper, what trains, whether it merges, the official checkpoints it converts",
}
NOTES = {
    "backbones": "model.pretrained also takes a path to any file of the row's layouts (README, Weights); the tiny rows "
    "are structures for tests",
}


def add_parser(sub) -> None:
    for name, text in HELP.items():
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[fmt.format(r[key]) if not isinstance(r[key], list) else ", ".join(r[key]) or "-" for key, fmt in columns]
             for r in rows]  # fmt: skip
    heads = [key.replace("_", " ") for key, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    for line in [heads, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def run(args, overrides: list[str]) -> int:
    no_overrides(args.command, overrides)
    rows = ROWS[args.command]()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print_table(rows, COLUMNS[args.command])
    if args.command in NOTES:
        print(NOTES[args.command])
    return 0

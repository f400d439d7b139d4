"""``vidapter config``: the resolved config of a preset with overrides, every field with its type and default."""

from __future__ import annotations

import json

from vidapter.cli.common import OVERRIDES_HELP, config_from, preset_option
from vidapter.config import describe


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="every setting of a preset with overrides: field, type, value, default",
                       description=OVERRIDES_HELP)  # fmt: skip
    preset_option(p)
    p.add_argument("--json", action="store_true", help="{name, fields: [{field, type, value, default}, ...]}")


def run(args, overrides: list[str]) -> int:
    cfg = config_from(args, overrides)
    rows = describe(cfg)
    if args.json:
        print(json.dumps({"name": cfg.name, "fields": rows}, indent=2))
        return 0
    width = max(len(r["field"]) for r in rows)
    kinds = max(len(r["type"]) for r in rows)
    print(f"{cfg.name}: {len(rows)} fields (* differs from the default)")
    for r in rows:
        mark = "*" if r["value"] != r["default"] else " "
        default = "" if r["value"] == r["default"] else f"  (default {json.dumps(r['default'])})"
        print(f"{mark} {r['field']:<{width}}  {r['type']:<{kinds}}  {json.dumps(r['value'])}{default}")
    return 0

"""``vidapter info``: parameter counts and GFLOPs per view of a preset (with overrides)."""

from __future__ import annotations

import json

from vidapter.cli.common import OVERRIDES_HELP, config_from, preset_option
from vidapter.summary import info_lines, model_info


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="parameters and GFLOPs per view of a preset", epilog=OVERRIDES_HELP)
    preset_option(p)
    p.add_argument("--json", action="store_true")


def run(args, overrides: list[str]) -> int:
    cfg = config_from(args, overrides)
    info = model_info(cfg)
    print(json.dumps(info, indent=2) if args.json else "\n".join(info_lines(cfg, info)))
    return 0

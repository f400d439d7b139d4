"""The ``vidapter`` command: a dispatcher. Each subcommand is one module here with ``add_parser(subparsers)`` and
``run(args, overrides) -> exit status``; the work is in the library, where the Python API calls the same functions.

vidapter's own errors (``errors.VidapterError``: a wrong setting, an unreadable file, a run that cannot go on) are
printed as one line: exit status 1 when a file could not be read or written, 2 otherwise. Anything else is a bug and
keeps its traceback; ``--debug`` shows the traceback of vidapter's errors too.
"""

from __future__ import annotations

import argparse
import logging
import sys

from vidapter.cli import config, convert, data, demo, eval, export, features, info, listing, predict, serve, train
from vidapter.cli.common import OVERRIDES_HELP
from vidapter.errors import VidapterError
from vidapter.files import FileError

SUBCOMMANDS = {"info": info, "presets": listing, "backbones": listing, "methods": listing, "config": config,
               "convert": convert, "train": train, "eval": eval, "predict": predict, "export": export, "demo": demo,
               "data": data, "features": features, "serve": serve}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidapter",
        description="Adapt image models to video action recognition (AIM, LoRA, ZeroI2V, ST-Adapter, EVL). "
        + OVERRIDES_HELP,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of every error, vidapter's own too")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(SUBCOMMANDS.values()):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args, rest = build_parser().parse_known_args(argv)
    bad = [r for r in rest if not r.startswith("--") or "=" not in r]
    if bad:
        print(f"vidapter: error: unrecognised arguments {bad}; overrides look like --model.num_frames=16",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return SUBCOMMANDS[args.command].run(args, rest)
    except VidapterError as e:
        if args.debug:
            raise
        print(f"vidapter: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, FileError) else 2

"""``vidapter train``: train a preset (under torchrun: distributed)."""

from __future__ import annotations

from vidapter.cli.common import OVERRIDES_HELP, config_from, preset_option, trust_option


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a preset; --section.field=value overrides", description=OVERRIDES_HELP)
    preset_option(p)
    trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.engine import fit

    fit(config_from(args, overrides), trust_pickle=args.trust_pickle)
    return 0

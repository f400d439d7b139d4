"""What several subcommands share: the config from --preset and overrides, and the options for files and devices."""

from __future__ import annotations

import argparse

from vidapter.config import Config, ConfigError, apply_overrides
from vidapter.files import TRUST_HINT
from vidapter.presets import PRESETS, get_preset
from vidapter.runtime import Runtime, inference_runtime

OVERRIDES_HELP = (
    "Settings are given as dotted overrides after the options: --section.field=value for any field of the model, "
    "data, optim and train sections (lists as a,b or [a,b]; none for null), e.g. --model.num_frames=16 "
    "--train.batch_size=4. `vidapter config --preset NAME` lists every field with its type, value and default."
)


def config_from(args: argparse.Namespace, overrides: list[str]) -> Config:
    """The preset named by ``--preset`` (or the defaults) with the command line's overrides applied."""
    cfg = get_preset(args.preset) if getattr(args, "preset", None) else Config()
    return apply_overrides(cfg, overrides)


def no_overrides(command: str, overrides: list[str]) -> None:
    if overrides:
        raise ConfigError(f"vidapter {command} takes no config overrides, got {overrides}")


def preset_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--preset", required=required, choices=sorted(PRESETS), metavar="NAME",
                   help="one of: " + ", ".join(PRESETS))  # fmt: skip


def trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help="read checkpoints and weight files with full pickle, which can run code written into the "
                   "file; by default they are read with PyTorch's restricted loader: " + TRUST_HINT)  # fmt: skip


def inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "none"],
                   help="autocast dtype (auto: bf16 on CUDA, none = fp32 on the CPU)")  # fmt: skip


def runtime_from(args: argparse.Namespace) -> Runtime:
    """--device, --amp and (eval) --compile as one Runtime."""
    return inference_runtime(args.device, args.amp, getattr(args, "compile", False))


def zero_shot_options(p: argparse.ArgumentParser) -> None:
    """What a zero-shot model takes beside its class names: the prompts, the row of a bare file, the protocol."""
    p.add_argument("--template", action="append", metavar="TEXT",
                   help="zero-shot: a prompt with {} for the class name, e.g. \"a video of a person {}.\" "
                   "(repeatable; default: CLIP's 28 Kinetics prompts, averaged)")  # fmt: skip
    p.add_argument("--backbone", metavar="ROW", help="zero-shot: the backbone row of a file that cannot tell it")
    p.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME",
                   help="zero-shot: the test view protocol and prompts (default: clip_zero_shot)")  # fmt: skip


def not_zero_shot(args: argparse.Namespace, needs: str) -> None:
    """Zero-shot options given without zero-shot: refused rather than ignored."""
    given = [f"--{k}" for k in ("template", "backbone", "preset") if getattr(args, k, None)]
    if given:
        raise ConfigError(f"{', '.join(given)} apply to zero-shot classification: add {needs}")

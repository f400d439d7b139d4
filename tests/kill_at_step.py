"""``python tests/kill_at_step.py STEP vidapter-train-arguments...``: train as ``vidapter train`` does, and SIGKILL the
process right after optimizer step STEP and its checkpoint (``fit``'s ``after_step`` hook): a crash at the worst time,
for the crash-safety tests."""

from __future__ import annotations

import logging
import os
import signal
import sys

from vidapter.config import apply_overrides
from vidapter.engine import fit
from vidapter.presets import get_preset


def main(step: int, args: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    preset = args[args.index("--preset") + 1]
    cfg = apply_overrides(get_preset(preset), [a for a in args if a.startswith("--") and "=" in a])

    def kill(progress) -> None:
        if progress.step == step:
            os.kill(os.getpid(), signal.SIGKILL)

    fit(cfg, after_step=kill)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])

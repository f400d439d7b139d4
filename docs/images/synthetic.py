"""Draws docs/images/synthetic.png: every class of the synthetic dataset (vidapter/data/synthetic.py), one row per
class, every other frame of a 16-frame clip at 64 px (what ``vidapter data synth`` writes before H.264), the same seed
for every row so that rows of one family show the same draws.

    python docs/images/synthetic.py            # writes docs/images/synthetic.png next to this file
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vidapter.data.synthetic import CLASSES, render_clip  # noqa: E402


def main(seed: int = 3, size: int = 64, frames: int = 16) -> None:
    gap = 4
    rows = []
    for label in range(len(CLASSES)):
        clip = render_clip(label, np.random.default_rng(seed), size, frames)[::2]
        pad = np.full((len(clip), size, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([np.concatenate([f, p], axis=1) for f, p in zip(clip, pad, strict=True)], axis=1))
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 0.82 * len(rows)))
    for label, (ax, strip) in enumerate(zip(axes, rows, strict=True)):
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"{label} {CLASSES[label]}", rotation=0, ha="right", va="center", fontsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
    axes[0].set_title("frames 0, 2, ..., 14 (time runs left to right)", fontsize=9)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.97, bottom=0.01, hspace=0.15)
    fig.savefig(Path(__file__).with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main()

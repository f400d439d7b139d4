"""Writes tests/data/assets/imgaug_randaugment_m7.npz: imgaug 0.4.0's own outputs for every part of
``RandAugment(n=4, m=7)``, which tests/data/test_randaugment.py compares vidapter's port against.

imgaug needs NumPy < 1.24, so it runs in a separate environment, not the test suite's:

    python3 -m venv /tmp/iaa && /tmp/iaa/bin/pip install "numpy==1.23.5" "imgaug==0.4.0" "scipy<1.12" \
        "scikit-image<0.22" opencv-python-headless
    /tmp/iaa/bin/python tests/data/make_randaugment_reference.py

The operations are RandAugment's own children (``aug[1]``, its SomeOf), each applied with 64 seeds: a signed
operation gives two distinct images (one per sign), an unsigned one a single image. Cutout draws its position, so it is
recorded at fixed positions through ``iaa.Cutout`` with the same size; the initial crop with fixed pixel counts.
"""

from __future__ import annotations

from pathlib import Path

import imgaug
import imgaug.augmenters as iaa
import numpy as np

OUT = Path(__file__).resolve().parent / "assets" / "imgaug_randaugment_m7.npz"


def images() -> dict[str, np.ndarray]:
    """Two 40 x 48 frames (40 * 48 * 3 values: imgaug's equalize takes its own path from 64 * 64 values up), one
    reaching 255 in every channel, one below it (where imgaug's equalize differs from PIL's)."""
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:40, 0:48]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.float64)
    full = np.clip(base + rng.randint(-30, 30, base.shape), 0, 255).astype(np.uint8)
    full[0, 0] = 255
    dim = (full.astype(np.float64) * 0.7 + 10).astype(np.uint8)
    return {"full": full, "dim": dim}


def main() -> None:
    assert imgaug.__version__ == "0.4.0", imgaug.__version__
    ra = iaa.RandAugment(n=4, m=7)
    children = list(ra[1])  # SomeOf's 18 operations, in imgaug's order
    out = {}
    for key, img in images().items():
        out[f"input/{key}"] = img
        for i, child in enumerate(children):
            if isinstance(child, iaa.Cutout):
                continue  # its position is random: recorded below at fixed positions
            results = {}
            for seed in range(64):
                imgaug.seed(seed)
                res = child.to_deterministic()(image=img)
                results[res.tobytes()] = res
            for j, res in enumerate(sorted(results.values(), key=lambda a: a.tobytes())):
                out[f"op/{i}/{key}/{j}"] = res
        for pos in ((0.3, 0.6), (0.02, 0.97), (0.99, 0.01)):
            cut = iaa.Cutout(nb_iterations=1, position=pos, size=np.float32(7) * np.float32(20 / 32 / 30),
                             squared=True, fill_mode="constant", cval=128)  # fmt: skip
            out[f"cutout/{pos[0]}_{pos[1]}/{key}"] = cut(image=img)
        for sides in ((0, 0, 0, 0), (1, 2, 3, 4), (7, 0, 5, 6)):
            crop = iaa.KeepSizeByResize(iaa.Crop(px=sides, keep_size=False), interpolation="linear")
            out[f"crop/{'_'.join(map(str, sides))}/{key}"] = crop(image=img)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({len(out)} arrays)")


if __name__ == "__main__":
    main()

"""CPU inference of an exported model: onnxruntime running the ONNX file ``vidapter export --onnx`` writes, beside
PyTorch eager on the same clip, in one process, one after the other on the same input.

Rows: the demo model (the synthetic preset: the demo ViT with AIM, 8 frames of 32 px) and AIM's ViT-B/16 (the K400
preset, 8 frames of 224 px, random weights: speed does not depend on them). Each row exports the model with
``vidapter.export_onnx`` (dynamic batch, opset 18), then times the ONNX program and ``model(x)`` under
``torch.no_grad()`` at each batch, the median of ``--iters`` calls after ``--warmup``, both with all the machine's
cores (onnxruntime's default intra-op threads, torch's default threads), and records the largest logit difference.

    python benchmarks/app/export_runtime.py --out docs/results/export_runtime_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402
from benchmarks._core.timing import median_seconds  # noqa: E402
from vidapter.classifier import build_model  # noqa: E402
from vidapter.export import export_onnx, runner  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402

ROWS = {"demo (synthetic preset, 8x32 px)": "synthetic", "AIM ViT-B/16 (K400 preset, 8x224 px)": "k400_vitb16_8f"}


def measure(name: str, preset: str, batches: list[int], warmup: int, iters: int) -> list[dict]:
    cfg = get_preset(preset)
    cfg.model = dataclasses.replace(cfg.model, pretrained=None)
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        export_onnx(model, cfg, path)
        export_s = time.perf_counter() - start
        run = runner(path)  # onnxruntime's CPU provider, as vidapter export checks the file
        t, s = cfg.model.num_frames, cfg.data.size
        for batch in batches:
            x = torch.randn(batch, 3, t, s, s, generator=torch.Generator().manual_seed(batch))
            xn = x.numpy()
            with torch.no_grad():
                want = model(x).numpy()

                def eager(x=x):
                    return model(x)

                eager_s = median_seconds(eager, "cpu", warmup, iters)
            ort_s = median_seconds(lambda xn=xn: run(xn), "cpu", warmup, iters)
            got = run(xn)
            row = {"model": name, "preset": preset, "batch": batch, "frames": t, "size": s,
                   "export_s": round(export_s, 1), "onnx_mib": round(path.stat().st_size / 2**20, 1),
                   "eager_ms": eager_s * 1e3, "onnxruntime_ms": ort_s * 1e3, "speedup": eager_s / ort_s,
                   "max_logit_diff": float(np.abs(got - want).max())}  # fmt: skip
            print(f"{name} batch {batch}: eager {row['eager_ms']:.1f} ms, onnxruntime {row['onnxruntime_ms']:.1f} ms "
                  f"({row['speedup']:.2f}x), largest logit difference {row['max_logit_diff']:.2e}")  # fmt: skip
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--out", default=None, help="write the JSON record here")
    args = p.parse_args()
    import onnxruntime as ort

    rows = []
    for name in args.rows:
        rows += measure(name, ROWS[name], args.batch, args.warmup, args.iters)
        if args.out:  # after every row: a run cut off keeps what it finished
            write_record(args.out, "export_runtime", describe_machine("cpu", onnxruntime=ort.__version__),
                         rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

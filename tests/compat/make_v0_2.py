"""Write the files of ``tests/compat/v0_2/`` with vidapter 0.2's own code, so that later versions are tested on what
0.2 really wrote: a run directory killed mid-epoch (its ``last.pt`` must resume), a finished run (its model directory
and checkpoint must evaluate and predict the same), adapter-only exports of every method, and the numbers each gave
under 0.2.

How they were made (vidapter 0.2.0, commit a0fb7af, CPU, torch 2.14.1)::

    git worktree add /tmp/v02 a0fb7af
    PYTHONPATH=/tmp/v02 python tests/compat/make_v0_2.py tests/compat/v0_2

The script uses only what 0.2 exposes (its CLI, ``export_adapters``, ``load_model``); the tests read the results
with today's code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import vidapter
from vidapter.adapters.peft import export_adapters, trainable_state_dict
from vidapter.classifier import build_model, load_model, predict_file
from vidapter.config import to_dict
from vidapter.data.synthetic import make_synthetic
from vidapter.presets import get_preset

# every method 0.2 has, on the demo ViT and its shipped weights (the digest the exports carry is that file's)
METHODS = {
    "aim": [],
    "lora": ["--model.method=lora", "--model.adapters=temporal", "--model.lora_r=4"],
    "lora_shifts": ["--model.method=lora", "--model.adapters=", "--model.head_shifts=[-1,1]"],
    "zeroi2v": ["--model.method=zeroi2v", "--model.adapters=", "--model.head_shifts=[-1,1]", "--model.num_tadapter=2"],
    "st_adapter": [
        "--model.method=st_adapter",
        "--model.adapters=",
        "--model.st_positions=attn,mlp",
        "--model.st_width=16",
    ],  # fmt: skip
    "evl": ["--model.method=evl", "--model.adapters=", "--model.evl_layers=1"],
}


def clip(num_frames: int = 8, size: int = 32) -> torch.Tensor:
    """The fixed input every expected logit is computed on: (2, 3, T, H, W)."""
    return torch.randn(2, 3, num_frames, size, size, generator=torch.Generator().manual_seed(0))


def train_args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "--preset", "synthetic", "--model.num_classes=3",
        f"--data.root={data}", f"--data.train_list={data / 'train.txt'}", f"--data.val_list={data / 'val.txt'}",
        f"--data.test_list={data / 'test.txt'}", f"--data.class_names={data / 'classes.txt'}",
        "--data.workers=0", "--data.cache_decoded=false", f"--train.run_dir={run_dir}", "--train.batch_size=2",
        "--train.epochs=2", "--train.ckpt_every=1", "--model.dropout=0.5", *extra,
    ]  # fmt: skip


def train(args: list[str], env: dict | None = None) -> int:
    cmd = [sys.executable, "-m", "vidapter", "train", *args]
    return subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}).returncode


def main(out: Path) -> None:
    assert vidapter.__version__ == "0.2.0", vidapter.__version__
    if out.exists():
        shutil.rmtree(out)
    data = out / "data"
    # three order classes, 3 training clips each: 5 optimizer steps per epoch at batch 2, 32 px, 16 frames
    make_synthetic(data, per_class={"train": 3, "val": 1, "test": 1}, size=32, frames=16, seed=3, classes=[0, 1, 4],
                   workers=1)  # fmt: skip
    # the whole run and one killed after 6 optimizer steps (epoch 2, batch 2): resuming it must end where whole did
    assert train(train_args(data, out / "whole")) == 0
    rc = train(train_args(data, out / "killed"), env={"VIDAPTER_FAULT_KILL_AT_STEP": "6"})
    assert rc == -9, rc
    for junk in ("best.pt", "curves.png", "confusion.png", "metrics.jsonl", "per_class_accuracy.csv", "skipped.jsonl"):
        for run in ("whole", "killed"):
            (out / run / junk).unlink(missing_ok=True)

    expected: dict = {"version": vidapter.__version__, "torch": torch.__version__}
    tensors = {}
    model, cfg, names = load_model(out / "whole" / "model")
    model.eval()
    with torch.no_grad():
        tensors["model_dir_logits"] = model(clip()).contiguous()
    ckpt_model, _, _ = load_model(out / "whole" / "last.pt")
    ckpt_model.eval()
    with torch.no_grad():
        tensors["checkpoint_logits"] = ckpt_model(clip()).contiguous()
    video = data / "test" / "grow" / "00000.mp4"
    expected["predict"] = predict_file(model, cfg, video, names=names, top_k=3)
    expected["predict"]["file"] = str(video.relative_to(out))
    for k, v in trainable_state_dict(ckpt_model).items():
        tensors[f"final.{k}"] = v.detach().contiguous()

    # adapter-only exports of every method, trained tensors set at random so that each one matters in the logits
    for method, overrides in METHODS.items():
        from vidapter.config import apply_overrides

        mcfg = apply_overrides(get_preset("synthetic"), ["--model.num_classes=3", *overrides])
        torch.manual_seed(1)
        m = build_model(mcfg.model)
        with torch.no_grad():
            for _name, p in m.named_parameters():
                if p.requires_grad:
                    p.normal_(0, 0.02)
        m.eval()
        export_adapters(m, out / "adapters" / f"{method}.safetensors", backbone=mcfg.model.pretrained,
                        config=to_dict(mcfg))  # fmt: skip
        with torch.no_grad():
            tensors[f"adapters.{method}"] = m(clip()).contiguous()
        expected.setdefault("adapters", {})[method] = overrides
    save_file(tensors, str(out / "expected.safetensors"))
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

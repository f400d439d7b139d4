"""Training command lines on the small synthetic dataset of the ``data`` fixture (tests/conftest.py)."""

from __future__ import annotations

from vidapter.adapters.registry import METHODS


def train_args(data, run_dir, *extra) -> list[str]:
    """``vidapter train`` arguments: the synthetic preset on ``data`` (its 13 classes), no loader workers, batch 8,
    then ``extra``."""
    return [
        "--preset", "synthetic", "--model.num_classes=13",
        f"--data.root={data}", f"--data.train_list={data / 'train.txt'}", f"--data.val_list={data / 'val.txt'}",
        f"--data.test_list={data / 'test.txt'}", f"--data.class_names={data / 'classes.txt'}",
        "--data.workers=0", f"--train.run_dir={run_dir}", "--train.batch_size=8", *extra,
    ]  # fmt: skip


# smaller sizes where a method's defaults are large for the demo ViT; a method not here runs with its defaults
SMALLER = {
    "lora": ["--model.adapters=", "--model.lora.r=4"],  # LoRA alone (AIM's adapters beside it: the contract tests)
    "st_adapter": ["--model.st_adapter.width=16", "--model.st_adapter.positions=attn,mlp"],
    "evl": ["--model.evl.layers=2"],
    "zeroi2v": ["--model.head_shifts=-1,1"],
}


def method_args(name: str) -> list[str]:
    """The method, beside AIM's default adapters where it combines with them, at SMALLER's sizes."""
    alone = [] if METHODS[name].combines_aim else ["--model.adapters="]
    return [f"--model.method={name}", *alone, *SMALLER.get(name, [])]

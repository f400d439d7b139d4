"""Training command lines on the small synthetic dataset of the ``data`` fixture (tests/conftest.py)."""

from __future__ import annotations


def train_args(data, run_dir, *extra) -> list[str]:
    """``vidapter train`` arguments: the synthetic preset on ``data`` (its 13 classes), no loader workers, batch 8,
    then ``extra``."""
    return [
        "--preset", "synthetic", "--model.num_classes=13",
        f"--data.root={data}", f"--data.train_list={data / 'train.txt'}", f"--data.val_list={data / 'val.txt'}",
        f"--data.test_list={data / 'test.txt'}", f"--data.class_names={data / 'classes.txt'}",
        "--data.workers=0", f"--train.run_dir={run_dir}", "--train.batch_size=8", *extra,
    ]  # fmt: skip

"""The demo's claim in miniature: frames pooled without temporal modelling cannot tell time-reversed pairs apart;
AIM's temporal adapters can. Also: the shipped image ViT loads through the same path as CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.demo.run import run_ablation
from vidapter.models.pretrained import WEIGHTS, sha256_file


def test_shipped_image_vit_loads_like_any_checkpoint():
    model = build_model(ModelConfig(backbone="demo_vit", pretrained="vidapter:demo-vit", num_frames=8, num_classes=5))
    report = model.load_report
    assert report.format == "timm" and report.num_tensors == 55 and report.path.endswith("demo/demo_vit.safetensors")
    meta = json.loads(Path(report.path).with_suffix(".json").read_text())
    assert meta["test_accuracy"]["angle"] > 0.9 and meta["test_accuracy"]["x"] > 0.8  # it learned images
    assert WEIGHTS["vidapter:demo-vit"].backbone == "demo_vit" and len(sha256_file(report.path)) == 64


@pytest.mark.slow
def test_space_only_is_at_chance_on_order_pairs_and_aim_is_not(tmp_path):
    rows = ["frozen space-only", "+ joint adaptation (AIM)"]
    results = run_ablation(
        tmp_path / "data", tmp_path / "runs", rows=rows, classes=[0, 1, 2, 3, 10],
        per_class={"train": 64, "val": 4, "test": 24},
        overrides=["train.epochs=8", "data.workers=2", "optim.warmup_epochs=0.3"],
    )  # fmt: skip
    space, aim = results
    assert 0.3 <= space["pair_accuracy"] <= 0.7, space  # pooled frames: chance within a pair
    assert aim["pair_accuracy"] >= 0.85, aim
    assert aim["appearance_accuracy"] >= 0.9 and space["appearance_accuracy"] >= 0.9
    assert (tmp_path / "runs" / "ablation.md").exists() and (tmp_path / "runs" / "ablation.png").exists()

"""The demo's claim in miniature: frames pooled without temporal modelling cannot tell time-reversed pairs apart;
AIM's temporal adapters can. Also: the shipped image ViT loads through the same path as CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.demo.run import run_ablation, run_methods
from vidapter.models.pretrained import WEIGHTS, sha256_file


def test_shipped_image_vit_loads_like_any_checkpoint():
    model = build_model(ModelConfig(backbone="demo_vit", pretrained="vidapter:demo-vit", num_frames=8, num_classes=5))
    report = model.load_report
    assert report.format == "timm" and report.num_tensors == 55 and report.path.endswith("demo/demo_vit.safetensors")
    meta = json.loads(Path(report.path).with_suffix(".json").read_text())
    acc = meta["test_accuracy"]
    assert acc["angle"] > 0.9 and acc["x"] > 0.8 and acc["hue"] > 0.8  # it learned images, colour included
    assert WEIGHTS["vidapter:demo-vit"].backbone == "demo_vit" and len(sha256_file(report.path)) == 64


@pytest.mark.slow
def test_methods_rotation_pair_separates_aim_from_evl(tmp_path):
    """``vidapter demo --methods`` in miniature, with the pattern the full run shows (and the ablation's first claim:
    frames pooled without temporal modelling cannot tell time-reversed pairs apart, AIM's adapters can): pooled
    frames are at chance on every pair; AIM learns the movement pair but not clockwise vs counter-clockwise (its
    temporal attention relates a position only to itself across frames); EVL's cross-frame term, which relates a
    patch to its neighbourhood in the next frame, learns both."""
    rows = ["frozen space-only (no temporal modelling)", "AIM", "EVL (decoder on all 4 blocks)"]
    results = run_methods(
        tmp_path / "data", tmp_path / "runs", rows=rows, classes=[0, 1, 8, 9, 10],
        per_class={"train": 64, "val": 4, "test": 24},
        overrides=["train.epochs=12", "data.workers=2", "optim.warmup_epochs=0.3"],
    )  # fmt: skip
    frozen, aim, evl = ({**r["per_pair"], "memory": r["memory"]["total"]} for r in results)
    move, rot = "move_right/move_left", "rotate_cw/rotate_ccw"
    assert frozen[move] <= 0.8 and frozen[rot] <= 0.7, frozen
    assert 0.3 <= results[0]["pair_accuracy"] <= 0.7, results[0]  # 96 clips of pairs: chance
    assert aim[move] >= 0.85 and aim[rot] <= 0.7, aim
    assert evl[move] >= 0.85 and evl[rot] >= 0.85, evl
    assert evl["memory"] < aim["memory"]  # the frozen backbone keeps nothing for backward
    assert all(r["appearance_accuracy"] >= 0.9 for r in results)
    assert (tmp_path / "runs" / "methods.md").exists() and (tmp_path / "runs" / "methods.png").exists()


@pytest.mark.slow
def test_per_frame_model_is_at_chance_on_relations(tmp_path):
    """Spatial adaptation with the temporal embedding scores a clip as a sum over frames: it learns an order pair,
    whose frames differ in distribution at a given time, and stays at chance on the relation families, whose frames
    do not (docs/synthetic.md)."""
    (spatial,) = run_ablation(
        tmp_path / "data", tmp_path / "runs", rows=["spatial adaptation"], classes=[0, 1, 13, 14, 15, 16, 17, 18],
        per_class={"train": 48, "val": 4, "test": 30},
        overrides=["train.epochs=8", "data.workers=2", "optim.warmup_epochs=0.3"],
    )  # fmt: skip
    assert spatial["pair_accuracy"] >= 0.8, spatial  # it learns what single frames with their time index tell
    assert set(spatial["per_relation"]) == {"colour_returns/colour_changes", "comes_back/moves_on",
                                            "same_object/other_object"}  # fmt: skip
    assert 0.35 <= spatial["relation_accuracy"] <= 0.65, spatial  # 180 clips: chance +- 4 standard errors
    assert all(0.25 <= v <= 0.75 for v in spatial["per_relation"].values()), spatial  # 60 clips each
    assert (tmp_path / "runs" / "ablation.png").exists()
    table = (tmp_path / "runs" / "ablation.md").read_text()
    assert "relations (chance 50 %)" in table.splitlines()[0]

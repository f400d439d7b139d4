"""Files written by vidapter 0.2 (tests/compat/v0_2, made by make_v0_2.py with the 0.2 code) read by today's code:
its model directory, run directory and checkpoint give the logits and predictions 0.2 gave, its adapter exports of
every method load with the same logits, and its run killed mid-epoch resumes to the weights 0.2's uninterrupted run
ended with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from make_v0_2 import METHODS, clip, train_args
from safetensors import safe_open
from safetensors.torch import load_file

from vidapter.adapters.peft import load_adapters, trainable_state_dict
from vidapter.checkpoint import load_checkpoint
from vidapter.classifier import build_model, load_model, predict_file
from vidapter.config import apply_overrides, from_dict
from vidapter.engine import fit
from vidapter.presets import get_preset

FILES = Path(__file__).parent / "v0_2"
# make_v0_2's overrides (0.2's flat names) as they are written today
TODAY = {
    "aim": [],
    "lora": ["--model.method=lora", "--model.adapters=temporal", "--model.lora.r=4"],
    "lora_shifts": ["--model.method=lora", "--model.adapters=", "--model.head_shifts=[-1,1]"],
    "zeroi2v": ["--model.method=zeroi2v", "--model.adapters=", "--model.head_shifts=[-1,1]",
                "--model.zeroi2v.num_tadapter=2"],
    "st_adapter": ["--model.method=st_adapter", "--model.adapters=", "--model.st_adapter.positions=attn,mlp",
                   "--model.st_adapter.width=16"],
    "evl": ["--model.method=evl", "--model.adapters=", "--model.evl.layers=1"],
}  # fmt: skip
EXPECTED = load_file(str(FILES / "expected.safetensors"))


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(clip())


@pytest.mark.parametrize("where, key", [("whole/model", "model_dir_logits"), ("whole", "model_dir_logits"),
                                        ("whole/last.pt", "checkpoint_logits")])  # fmt: skip
def test_model_run_and_checkpoint_give_the_same_logits(where, key):
    model, cfg, names = load_model(FILES / where)
    assert names == ["move_right", "move_left", "grow"] and cfg.model.num_classes == 3
    torch.testing.assert_close(_logits(model), EXPECTED[key], atol=1e-6, rtol=0)


def test_predict_gives_what_it_gave():
    expected = json.loads((FILES / "expected.json").read_text())["predict"]
    model, cfg, names = load_model(FILES / "whole" / "model")
    got = predict_file(model, cfg, FILES / expected["file"], names=names, top_k=3)
    assert [t["name"] for t in got["top"]] == [t["name"] for t in expected["top"]]
    for a, b in zip(got["top"], expected["top"], strict=True):
        assert a["prob"] == pytest.approx(b["prob"], abs=1e-6)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_adapter_exports_load_with_the_same_logits(method):
    path = FILES / "adapters" / f"{method}.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert "version" not in meta  # 0.2 wrote none: read as version 1
    cfg = from_dict(json.loads(meta["config"]))
    assert TODAY.keys() == METHODS.keys()
    assert cfg == apply_overrides(get_preset("synthetic"), ["--model.num_classes=3", *TODAY[method]])
    model = build_model(cfg.model)
    load_adapters(model, path)
    torch.testing.assert_close(_logits(model), EXPECTED[f"adapters.{method}"], atol=1e-6, rtol=0)


def test_a_run_killed_under_0_2_resumes_to_the_weights_0_2_ended_with(tmp_path):
    shutil.copytree(FILES / "data", tmp_path / "data")
    shutil.copytree(FILES / "killed", tmp_path / "killed")
    state = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (state["version"], state["epoch"], state["batch"], state["step"]) == (2, 1, 2, 6)
    args = train_args(tmp_path / "data", tmp_path / "killed")
    cfg = apply_overrides(get_preset("synthetic"), [a for a in args if a.startswith("--") and "=" in a])
    fit(cfg)
    final = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert (final["epoch"], final["step"]) == (2, 8)  # 9 clips at batch 2: 4 steps an epoch
    model, _, _ = load_model(tmp_path / "killed" / "model")
    weights = trainable_state_dict(model)
    expected = {k.removeprefix("final."): v for k, v in EXPECTED.items() if k.startswith("final.")}
    assert weights.keys() == expected.keys()
    for k, v in expected.items():
        torch.testing.assert_close(weights[k], v, atol=1e-5, rtol=0, msg=k)

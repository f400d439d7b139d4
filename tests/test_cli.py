"""The command line, through cli.main: numbers of `info`, and clear errors for bad overrides."""

from __future__ import annotations

import json

import pytest

from vidapter.cli import main
from vidapter.config import Config, ConfigError, apply_overrides
from vidapter.presets import PRESETS


def _info(capsys, *args) -> dict:
    assert main(["info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "preset, trainable, gflops",
    [("k400_vitb16_8f", 10_966_672, 202), ("ssv2_vitb16_8f", 14_343_342, 208), ("k400_vitl14_8f", 38_261_136, 934),
     # ViFi-CLIP's README: 281 GFLOPs at 16 x 224 (the class embeddings are computed once, not per view)
     ("vifi_k400_vitb16_16f", 124_323_841, 281)],
)  # fmt: skip
def test_info_matches_the_paper(capsys, preset, trainable, gflops):
    info = _info(capsys, "--preset", preset)
    assert info["params"]["trainable"] == trainable
    assert info["gflops_per_view"] == pytest.approx(gflops, rel=0.005)


def test_gflops_scale_linearly_with_frames(capsys):
    """Paper: 606 / 1214 / 2428 GFLOPs for 3 views at 8 / 16 / 32 frames."""
    views = {t: 3 * _info(capsys, "--preset", f"k400_vitb16_{t}f")["gflops_per_view"] for t in (8, 16, 32)}
    for t, paper in ((8, 606), (16, 1214), (32, 2428)):
        assert views[t] == pytest.approx(paper, rel=0.005)


def test_info_with_overrides(capsys):
    info = _info(capsys, "--preset", "k400_vitb16_8f", "--model.adapter_layers=top:6", "--model.adapters=spatial")
    assert info["params"]["adapters"] == 6 * 295_872
    assert info["adapters"] == ["spatial"]


def test_info_prints_a_table(capsys):
    assert main(["info", "--preset", "k400_vitb16_8f"]) == 0
    out = capsys.readouterr().out
    assert "10,966,672" in out and "96,764,560" in out and "GFLOPs per view (8x224x224): 202.1" in out


@pytest.mark.parametrize(
    "override, message",
    [
        ("--model.num_frame=8", "model has no field 'num_frame'"),
        ("--model.num_frames=eight", "model.num_frames: expected an integer, got 'eight'"),
        ("--solver.lr=1", "unknown section 'solver'"),
        ("--model.adapters=spatial,tempral", "model.adapters: unknown kinds ['tempral']"),
        ("--model.finetune=most", "finetune must be one of ('adapters', 'full')"),
        ("--model.backbone=vit_huge", "unknown backbone 'vit_huge'"),
    ],
)
def test_bad_overrides_are_named(capsys, override, message):
    assert main(["info", "--preset", "k400_vitb16_8f", override]) == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--preset", "k999"])
    assert "invalid choice" in capsys.readouterr().err


def test_comma_lists_of_numbers_and_the_method_lines(capsys):
    cfg = apply_overrides(Config(), ["model.head_shifts=-1,1", "data.area=0.5,1.0", "model.lora.targets=qkv"])
    assert (cfg.model.head_shifts, cfg.data.area, cfg.model.lora.targets) == ([-1, 1], [0.5, 1.0], ["qkv"])
    assert main(["info", "--preset", "synthetic", "--model.method=lora", "--model.adapters=", "--model.lora.r=4",
                 "--model.head_shifts=-1,1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "LoRA: r=4, alpha=8 on qkv,proj,fc1,fc2 of every block" in out and "STDHA: head offsets [-1, 1]" in out


def test_override_types():
    cfg = apply_overrides(Config(), ["model.pretrained=none", "model.aim.ratio=1", "model.temporal_embed=true"])
    assert cfg.model.pretrained is None and cfg.model.aim.ratio == 1.0 and cfg.model.temporal_embed is True
    assert apply_overrides(Config(), ["model.adapters="]).model.adapters == []
    with pytest.raises(ConfigError, match="expected true or false"):
        apply_overrides(Config(), ["model.grad_checkpointing=1"])


def test_every_preset_builds_and_the_named_ones_exist(capsys):
    for name in ("k400_vitb16_8f", "k400_vitb16_16f", "k400_vitb16_32f", "k400_vitl14_8f", "ssv2_vitb16_8f",
                 "ssv2_vitl14_8f", "diving48_vitb16_32f", "k400_in21k_vitb16_8f"):  # fmt: skip
        assert name in PRESETS
    diving = _info(capsys, "--preset", "diving48_vitb16_32f")
    assert diving["view"]["frames"] == 32 and diving["params"]["head"] == 768 * 48 + 48
    in21k = _info(capsys, "--preset", "k400_in21k_vitb16_8f")
    assert in21k["backbone"] == "in21k_vitb16" and in21k["params"]["trainable"] == 10_966_672


def test_count_macs_leaves_a_real_model_untouched():
    import torch

    from vidapter.classifier import build_model
    from vidapter.config import ModelConfig
    from vidapter.models.flops import count_macs

    model = build_model(ModelConfig(backbone="tiny_clip", num_frames=2, num_classes=3))
    before = model.head.fc.weight.clone()
    assert count_macs(model, (1, 3, 2, 32, 32)) > 0
    assert model.head.fc.weight.device.type == "cpu" and torch.equal(model.head.fc.weight, before)


def test_none_is_a_string_where_the_field_is_not_optional():
    cfg = apply_overrides(Config(), ["train.amp=none", "model.pretrained=none"])
    assert cfg.train.amp == "none" and cfg.model.pretrained is None


def test_only_vidapters_errors_become_one_line(capsys, monkeypatch):
    """A ConfigError is one line and exit 2 (--debug: its traceback); any other exception is a bug and propagates."""
    assert main(["info", "--preset", "k400_vitb16_8f", "--model.finetune=most"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(ConfigError, match="finetune must be one of"):
        main(["--debug", "info", "--preset", "k400_vitb16_8f", "--model.finetune=most"])

    def broken(cfg):
        raise KeyError("a bug inside vidapter")

    monkeypatch.setattr("vidapter.cli.info.model_info", broken)
    with pytest.raises(KeyError, match="a bug inside vidapter"):
        main(["info", "--preset", "k400_vitb16_8f"])


def test_config_lists_every_field_with_type_value_and_default(capsys):
    assert main(["config", "--preset", "synthetic", "--model.num_frames=16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["field"]: r for r in out["fields"]}
    assert out["name"] == "synthetic" and len(rows) == len(out["fields"])
    assert rows["model.num_frames"] == {"field": "model.num_frames", "type": "int", "value": 16, "default": 8}
    assert rows["model.backbone"]["value"] == "demo_vit" and rows["model.backbone"]["default"] == "clip_vitb16"
    assert rows["data.area"]["type"] == "list[float]" and rows["model.pretrained"]["type"] == "str | None"
    assert {f.split(".")[0] for f in rows} == {"model", "data", "optim", "train"}
    assert main(["config", "--preset", "synthetic"]) == 0
    text = capsys.readouterr().out
    assert "* model.backbone" in text and '(default "clip_vitb16")' in text


def test_help_says_how_settings_are_given(capsys):
    for command in (["--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
        out = " ".join(capsys.readouterr().out.split())
        assert "--section.field=value" in out and "vidapter config --preset NAME" in out


def test_methods_lists_the_registry(capsys):
    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["aim", "lora", "zeroi2v", "st_adapter", "evl", "vifi"]
    assert rows["lora"]["merges"] and rows["zeroi2v"]["merges"] and not rows["aim"]["merges"]
    assert rows["evl"]["official"] == ["evl-official"] and rows["aim"]["official"] == ["aim-official"]
    assert rows["vifi"]["official"] == ["vifi-official"] and not rows["vifi"]["merges"]

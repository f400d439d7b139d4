"""The methods' presets: trainable counts pinned to the official code's, and their optimizer rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from runs import method_args

from vidapter.adapters.peft import count_parameters
from vidapter.adapters.registry import METHODS
from vidapter.classifier import build_model
from vidapter.config import flatten
from vidapter.optim import lr_at, param_groups
from vidapter.presets import PRESETS, get_preset

CLIP = {
    "data.mean": [122.77, 116.75, 104.09],
    "data.std": [68.50, 66.63, 70.32],
    "data.size": 224,
    "data.test_short_side": 224,
    "optim.betas": [0.9, 0.999],
    "model.dropout": 0.5,
    "model.adapters": [],
}
ZCLIP = {**CLIP, "data.mean": [122.769, 116.74, 104.04], "data.std": [68.493, 66.63, 70.321]}  # MMAction2 configs
B16 = {"model.backbone": "clip_vitb16", "model.pretrained": "openai:ViT-B/16"}
L14 = {"model.backbone": "clip_vitl14", "model.pretrained": "openai:ViT-L/14"}
# ST-Adapter: main.py, scripts/, video_dataset/dataset.py (lr = blr 1e-3 x batch / 256; batch 192 = 8 x 24 here)
ST_K400 = {
    **CLIP, **B16, "model.method": "st_adapter", "model.st_adapter.width": 384, "model.st_adapter.positions": ["mlp"],
    "model.num_classes": 400, "model.num_frames": 8, "data.sampling": "dense", "data.frame_interval": 16,
    "data.short_side_range": [224, 258], "data.flip": 0.5, "data.randaugment": None, "data.erasing": 0.0,
    "data.test_clips": 3, "data.test_crops": 1, "optim.lr": 7.5e-4, "optim.weight_decay": 0.01,
    "optim.decay_groups": "bias", "optim.schedule": "step_cosine", "optim.warmup_epochs": 2, "optim.warmup_start": 0.0,
    "optim.label_smoothing": 0.0, "train.epochs": 12, "train.batch_size": 24,
}  # fmt: skip
ST_SSV2 = {**ST_K400, "model.st_adapter.positions": ["attn", "mlp"], "model.num_classes": 174,
           "data.sampling": "uniform", "data.short_side_range": None, "data.area": [0.08, 1.0], "data.flip": 0.0,
           "data.randaugment": [4, 7], "data.test_clips": 1, "data.test_crops": 3, "optim.lr": 1e-3, "train.epochs": 50,
           "train.batch_size": 32}  # fmt: skip
# EVL: main.py, scripts/train_k400_*.sh, video_dataset/ (batch 256 = 8 x 32; 50,000 steps ~ 53 epochs of K400)
EVL_K400 = {
    **CLIP, **B16, "model.method": "evl", "model.evl.layers": 4, "model.num_classes": 400, "model.num_frames": 8,
    "data.sampling": "dense", "data.frame_interval": 16, "data.area": [0.08, 1.0], "data.flip": 0.0,
    "data.randaugment": [4, 7], "data.test_clips": 3, "data.test_crops": 1, "optim.lr": 4e-4,
    "optim.weight_decay": 0.05, "optim.decay_groups": "none", "optim.schedule": "step_cosine",
    "optim.warmup_epochs": 0, "train.epochs": 53, "train.batch_size": 32, "train.accum_steps": 1,
}  # fmt: skip
# ZeroI2V: configs/recognition/vit_zero_clip/*.py
Z_K400 = {
    **ZCLIP, **B16, "model.method": "zeroi2v", "model.zeroi2v.ratio": 0.25, "model.zeroi2v.scale": 0.5,
    "model.zeroi2v.num_tadapter": 2, "model.zeroi2v.dropout": 0.1, "model.head_shifts": [-1, 1],
    "model.num_classes": 400, "model.num_frames": 8,
    "data.sampling": "dense", "data.frame_interval": 16, "data.short_side": 256, "data.area": [0.08, 1.0],
    "data.flip": 0.5, "data.randaugment": [4, 7], "data.test_clips": 3, "data.test_crops": 1, "optim.lr": 3e-4,
    "optim.weight_decay": 0.05, "optim.decay_groups": "norms_embeds", "optim.schedule": "epoch_cosine",
    "optim.warmup_epochs": 2.5, "optim.warmup_start": 0.1, "train.epochs": 40, "train.batch_size": 8,
}  # fmt: skip
# ViFi-CLIP: configs/**/16_*_vifi_clip*.yaml over utils/config.py's defaults, utils/optimizer.py, datasets/build.py
VIFI_K400 = {
    **B16, "model.method": "vifi", "model.vifi.train": "both", "model.adapters": [], "model.templates": None,
    "model.num_frames": 16, "model.dropout": 0.0, "model.drop_path_rate": 0.0, "data.sampling": "uniform",
    "data.short_side": 256, "data.size": 224, "data.flip": 0.5, "data.color_jitter": [0.4, 0.4, 0.2, 0.1],
    "data.mean": [123.675, 116.28, 103.53], "data.std": [58.395, 57.12, 57.375], "data.test_clips": 1,
    "data.test_crops": 3, "optim.lr": 2.2e-5, "optim.betas": [0.9, 0.98], "optim.weight_decay": 0.001,
    "optim.decay_groups": "none", "optim.schedule": "step_cosine", "optim.warmup_epochs": 5,
    "optim.warmup_start": 0.0, "optim.final_lr": 0.01, "optim.label_smoothing": 0.1, "optim.mixup": 0.8,
    "optim.cutmix": 1.0, "train.epochs": 30, "train.batch_size": 4, "train.accum_steps": 16,
}  # fmt: skip
VIFI_32 = {**VIFI_K400, "model.num_frames": 32, "data.test_crops": 1}
METHOD_AUDITED = {
    "vifi_k400_vitb16_16f": VIFI_K400,
    "vifi_k400_zs_vitb16_32f": {**VIFI_32, "optim.lr": 8e-6, "train.epochs": 10, "train.accum_steps": 8},
    "vifi_base2novel_vitb16_32f": {**VIFI_32, "optim.lr": 2e-6, "train.epochs": 11, "train.accum_steps": 2},
    "vifi_fewshot_vitb16_32f": {**VIFI_32, "optim.lr": 2e-6, "train.epochs": 50, "train.accum_steps": 2},
    "st_adapter_k400_vitb16_8f": ST_K400,
    "st_adapter_ssv2_vitb16_8f": ST_SSV2,
    "evl_k400_vitb16_8f": EVL_K400,
    "evl_k400_vitb16_16f": {**EVL_K400, "model.num_frames": 16, "data.test_clips": 1, "data.test_crops": 3},
    "evl_k400_vitb16_32f": {**EVL_K400, "model.num_frames": 32, "data.frame_interval": 8, "data.test_clips": 1,
                            "data.test_crops": 3},
    "evl_k400_vitl14_8f": {**EVL_K400, **L14},
    "evl_k400_vitl14_32f": {**EVL_K400, **L14, "model.num_frames": 32, "data.frame_interval": 8, "data.test_clips": 1,
                            "data.test_crops": 3, "train.batch_size": 8, "train.accum_steps": 4},
    # stated by the authors (12 layers, TSN sampling, 3 crops, 30k steps at 256 ~ 45 epochs), not released code
    "evl_ssv2_vitb16_8f": {**EVL_K400, "model.evl.layers": 12, "model.num_classes": 174, "data.sampling": "uniform",
                           "data.test_clips": 1, "data.test_crops": 3, "train.epochs": 45},
    "zeroi2v_k400_vitb16_8f": Z_K400,
    "zeroi2v_ssv2_vitb16_16f": {**Z_K400, "model.num_classes": 174, "model.num_frames": 16,
                                "model.zeroi2v.scale": 1.0, "model.zeroi2v.dropout": 0.0,
                                "model.head_shifts": [-1, 1, -2, 2],
                                "data.sampling": "uniform", "data.flip": 0.0, "data.erasing": 0.25,
                                "data.test_clips": 1, "data.test_crops": 3, "optim.label_smoothing": 0.1,
                                "train.epochs": 50, "train.batch_size": 4},
    "zeroi2v_k400_vitl14_8f": {**Z_K400, **L14, "model.head_shifts": [-1, -1, 1, 1]},
}  # fmt: skip


def test_every_method_preset_is_audited():
    assert set(METHOD_AUDITED) == {n for n in PRESETS if get_preset(n).model.method != "aim"}


@pytest.mark.parametrize("name", sorted(METHOD_AUDITED))
def test_preset_equals_its_audited_recipe(name):
    cfg = get_preset(name)
    got = flatten(cfg)
    wrong = {k: (got[k], want) for k, want in METHOD_AUDITED[name].items() if got[k] != want}
    assert not wrong, wrong


@pytest.mark.parametrize(
    "preset, trainable, adapters",
    [
        ("st_adapter_k400_vitb16_8f", 7_417_744, 7_110_144),  # 12x384 + K400 head
        # ViFi-CLIP "both": the image tower with its projection (86,192,640), the text tower without its token
        # embedding (63,428,096 - 49,408 x 512), the logit scale
        ("vifi_k400_vitb16_16f", 86_192_640 + 63_428_096 - 49_408 * 512 + 1, None),
        ("st_adapter_ssv2_vitb16_8f", 14_354_094, 14_220_288),  # 24x384 + SSv2 head
        ("evl_k400_vitb16_8f", 33_183_376, None),
        ("evl_k400_vitl14_32f", 58_826_128, None),
        ("evl_ssv2_vitb16_8f", 98_756_526, None),  # 12 decoder layers, 174 classes
        ("zeroi2v_k400_vitb16_8f", 14_517_136, 14_201_856),  # + temporal embedding, ln_post, head
        ("zeroi2v_k400_vitl14_8f", None, 50_454_528),
    ],
)
def test_preset_counts(preset, trainable, adapters):
    cfg = get_preset(preset)
    with torch.device("meta"):
        counts = count_parameters(build_model(dataclasses.replace(cfg.model, pretrained=None)))
    assert trainable is None or counts["trainable"] == trainable
    assert adapters is None or counts["adapters"] == adapters


def _groups(preset: str) -> dict[str, float]:
    cfg = get_preset(preset)
    model = build_model(
        dataclasses.replace(cfg.model, backbone="tiny_clip", pretrained=None, sections={"evl": {"layers": 2}})
    )
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["weight_decay"] for g in param_groups(model, cfg.optim) for p in g["params"]}


def test_weight_decay_rules_of_each_method():
    st = _groups("st_adapter_k400_vitb16_8f")  # biases alone are exempt
    assert st["head.fc.bias"] == 0 and st["backbone.blocks.0.adapter_pre_mlp.conv.bias"] == 0
    assert st["head.fc.weight"] == st["backbone.blocks.0.adapter_pre_mlp.conv.weight"] == 0.01
    evl = _groups("evl_k400_vitb16_8f")  # every tensor decays, norms, query and tables included
    assert set(evl.values()) == {0.05} and "decoder.cls_token" in evl and "decoder.norm.weight" in evl
    z = _groups("zeroi2v_k400_vitb16_8f")  # embeddings and norms exempt, adapter biases decay
    assert z["temporal_embed"] == z["backbone.norm.weight"] == z["backbone.norm.bias"] == 0
    assert z["backbone.blocks.0.t_adapter_in.fc1.bias"] == z["head.fc.bias"] == 0.05


def test_schedules():
    st, evl = get_preset("st_adapter_k400_vitb16_8f").optim, get_preset("evl_k400_vitb16_8f").optim
    assert (st.schedule, st.warmup_epochs, st.warmup_start, st.lr) == ("step_cosine", 2, 0.0, 7.5e-4)
    assert lr_at(0, 100, 20, st.lr, st.warmup_start) == 0.0  # the warm-up starts at 0
    assert (evl.schedule, evl.warmup_epochs, evl.lr) == ("step_cosine", 0, 4e-4)
    assert lr_at(0, 100, 0, evl.lr, 0.0) == evl.lr and lr_at(100, 100, 0, evl.lr, 0.0) == 0.0


def test_other_methods_refuse_aim_adapters():
    cfg = get_preset("st_adapter_k400_vitb16_8f").model
    with pytest.raises(ValueError, match="replaces AIM's adapters: set --model.adapters="):
        build_model(dataclasses.replace(cfg, backbone="tiny_clip", pretrained=None, adapters=["spatial"]))


KILL = Path(__file__).parent / "kill_at_step.py"  # trains as `vidapter train` does, SIGKILLed after a given step


@pytest.mark.parametrize("method", list(METHODS))
def test_engine_runs_every_method_and_resumes_exactly(data, tmp_path, method, capsys, clip_file):
    """The engine knows no method: train (dropout, drop-path, RandAugment on, two batches a step), kill at a step,
    resume bit-exactly, then eval, predict and an adapter-only export that loads back onto the same backbone."""
    import os
    import signal
    import subprocess
    import sys

    from runs import train_args

    from vidapter.adapters.peft import load_adapters
    from vidapter.checkpoint import load_checkpoint
    from vidapter.classifier import load_model
    from vidapter.cli import main

    extra = [*method_args(method), "--train.epochs=2", "--train.ckpt_every=2", "--model.dropout=0.5",
             "--data.randaugment=[2,9]", "--data.randaugment_impl=torchvision",
             "--train.max_steps_per_epoch=3", "--train.batch_size=4", "--train.accum_steps=2"]  # fmt: skip
    if METHODS[method].head is not None:  # a method with its own text head: a CLIP with a text tower
        extra += ["--model.backbone=tiny_clip", f"--model.pretrained={clip_file}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(run_dir, kill_at_step=None):
        train = ["-m", "vidapter", "train"] if kill_at_step is None else [str(KILL), str(kill_at_step)]
        cmd = [sys.executable, *train, *train_args(data, run_dir, *extra)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(proc):
        proc.stderr_text = proc.communicate(timeout=300)[1]
        return proc

    # the uninterrupted run and the one killed at step 5 side by side: each is single-threaded, so neither's numbers
    # depend on the other, and the two cores are both used
    whole, killed = start(tmp_path / "whole"), start(tmp_path / "killed", kill_at_step=5)
    assert finish(whole).returncode == 0, whole.stderr_text[-2000:]
    assert finish(killed).returncode == -signal.SIGKILL
    resumed = finish(start(tmp_path / "killed"))
    assert resumed.returncode == 0 and "resumed from" in resumed.stderr_text, resumed.stderr_text[-2000:]
    a, b = (load_checkpoint(tmp_path / r / "last.pt")["model"] for r in ("whole", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    run_dir = tmp_path / "whole"
    assert main(["eval", str(run_dir), "--split", "test", "--views", "8x1x1"]) == 0
    clip = data / "test" / "grow" / "00000.mp4"
    assert main(["predict", str(run_dir), str(clip), "--top-k", "2"]) == 0
    assert main(["export", str(run_dir), "--adapters", str(tmp_path / "a.safetensors")]) == 0
    model, _, _ = load_model(run_dir / "model")
    meta = load_adapters(model, tmp_path / "a.safetensors")
    assert meta["format"] == "vidapter-adapters" and f'"method": "{method}"' in meta["config"]

"""The engine at its edges: a non-finite loss inside an accumulated step, evaluation over the data as given when a
video cannot be read, the SIGTERM handler after ``fit``, resuming across settings and versions, settings every method
honours or refuses."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading

import pytest
import torch
from torch import nn

from vidapter.checkpoint import load_checkpoint, save_checkpoint
from vidapter.classifier import build_model
from vidapter.cli import main
from vidapter.config import ConfigError, ModelConfig, OptimConfig, apply_overrides
from vidapter.data.build import build_dataset
from vidapter.data.loader import build_loader
from vidapter.engine import fit
from vidapter.errors import VidapterError
from vidapter.evaluation import coverage, evaluate
from vidapter.loop import TrainError, train_one_epoch
from vidapter.optim import CosineWarmup
from vidapter.presets import get_preset
from vidapter.runtime import Runtime


class _Sampler:
    def set_epoch(self, epoch, skip=0):
        pass


class _Batches(list):
    """A loader of fixed batches: what train_one_epoch asks of one (a sampler with set_epoch, a batch size)."""

    sampler, batch_size = _Sampler(), 2


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_a_nan_in_any_micro_batch_stops_before_the_step(bad):
    """accum_steps=3: a NaN clip in micro-batch 0, 1 or 2 of the first step stops the run at that step's end, before
    AdamW sees the gradient: the weights stay the initial ones, finite."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = _Batches()
    for b in range(6):
        video = torch.randn(2, 2, 3)
        if b == bad:
            video[1, 0, 0] = float("nan")
        batches.append({"video": video, "label": torch.tensor([0, 2]), "skipped": []})
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = CosineWarmup(optimizer, OptimConfig(warmup_epochs=0), steps_per_epoch=2, epochs=1)
    with pytest.raises(TrainError, match=f"epoch 1 batch {bad + 1}: the loss is not finite"):
        train_one_epoch(model, batches, optimizer, scheduler, None, epoch=0, first_batch=0, batches=6,
                        rt=Runtime(torch.device("cpu")), accum=3, clip_grad=None, label_smoothing=0.0, mixup=None,
                        on_step=lambda *_: False)  # fmt: skip
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert scheduler.step_num == 0


@pytest.fixture(scope="module")
def broken_test_list(data, tmp_path_factory):
    """The synthetic test list with a file that is not a video and one that is gone, in the middle of it."""
    tmp = tmp_path_factory.mktemp("broken")
    (tmp / "broken.mp4").write_text("not a video")
    lines = (data / "test.txt").read_text().splitlines()
    listing = tmp / "test.txt"
    listing.write_text("\n".join([*lines[:5], f"{tmp / 'broken.mp4'} 3", *lines[5:], f"{tmp / 'gone.mp4'} 7"]) + "\n")
    return listing, [str(tmp / "broken.mp4"), str(tmp / "gone.mp4")]


def _synthetic(data, run_dir=None, *extra):
    return apply_overrides(get_preset("synthetic"), [
        "--model.num_classes=13", f"--data.root={data}", f"--data.train_list={data / 'train.txt'}",
        f"--data.val_list={data / 'val.txt'}", f"--data.test_list={data / 'test.txt'}",
        f"--data.class_names={data / 'classes.txt'}", "--data.workers=0", "--data.cache_decoded=false",
        f"--train.run_dir={run_dir}", "--train.batch_size=8", *extra,
    ])  # fmt: skip


def test_evaluation_leaves_out_or_misses_an_unreadable_video_never_substitutes(data, broken_test_list):
    listing, broken = broken_test_list
    cfg = _synthetic(data, None, f"--data.test_list={listing}")
    model = build_model(cfg.model).eval()
    facts = model.backbone.facts
    ds, _ = build_dataset(cfg.data, "test", num_frames=8, num_classes=13, mean=facts.mean, std=facts.std)
    assert ds[5]["video"] is None and ds[5]["label"] == 3  # never another sample under this index
    loader = build_loader(ds, 4, train=False, workers=0)
    kw = dict(device=torch.device("cpu"), num_classes=13, normalize=ds.normalize)
    left_out = evaluate(model, loader, **kw)
    missed = evaluate(model, loader, **kw, unreadable="wrong")
    clean_ds, _ = build_dataset(_synthetic(data).data, "test", num_frames=8, num_classes=13, mean=facts.mean,
                                std=facts.std)  # fmt: skip
    clean = evaluate(model, build_loader(clean_ds, 4, train=False, workers=0), **kw)

    assert (left_out["videos"], left_out["read"], left_out["total"]) == (13, 13, 15)
    assert [e["path"] for e in left_out["excluded"]] == broken and all(e["reason"] for e in left_out["excluded"])
    assert left_out["top1"] == clean["top1"] and left_out["loss"] == pytest.approx(clean["loss"], abs=1e-6)
    assert left_out["confusion"].sum() == 13
    assert (missed["videos"], missed["read"], missed["total"]) == (15, 13, 15)
    assert missed["top1"] == pytest.approx(clean["top1"] * 13 / 15) and missed["excluded"] == left_out["excluded"]
    assert missed["top5"] == pytest.approx(clean["top5"] * 13 / 15)
    assert coverage(left_out) == "evaluated 13 of 15 videos (2 unreadable, left out)"
    assert coverage(missed) == "evaluated 13 of 15 videos (2 unreadable, counted as misses)"
    assert coverage(clean) == "evaluated 13 of 13 videos"


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """One epoch of two steps, trained by fit in the main thread under a handler of the caller's."""
    run_dir = tmp_path_factory.mktemp("finished")
    cfg = _synthetic(data, run_dir, "--train.epochs=1", "--train.max_steps_per_epoch=2")

    def mine(*_):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        result = fit(cfg)
        after = signal.getsignal(signal.SIGTERM)
        with pytest.raises(VidapterError, match="annotation file not found"):  # a fit that fails while building
            fit(_synthetic(data, run_dir / "failed", f"--data.train_list={run_dir / 'missing.txt'}"))
        after_failure = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return cfg, result, mine, after, after_failure


def test_fit_gives_back_the_sigterm_handler_it_found(finished_run):
    _, result, mine, after, after_failure = finished_run
    assert not result["stopped"] and len(result["history"]) == 1
    assert after is mine and after_failure is mine


def test_fit_runs_outside_the_main_thread(data, tmp_path):
    cfg = _synthetic(data, tmp_path, "--train.epochs=1", "--train.max_steps_per_epoch=1", "--data.val_list=")
    out = {}

    def train():
        try:
            out.update(fit(cfg))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            out["error"] = e

    thread = threading.Thread(target=train)
    thread.start()
    thread.join(timeout=300)
    assert "error" not in out, out.get("error")
    assert len(out["history"]) == 1 and (tmp_path / "model" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "override, allowed",
    [
        ("--model.recompute=mlp", True),
        ("--model.grad_checkpointing=true", True),
        ("--model.dropout=0.3", True),
        ("--model.aim.ratio=0.5", False),
        ("--model.lora.dropout=0.1", True),
        ("--optim.decay_groups=reference", False),
    ],
)
def test_resume_allows_settings_that_shape_no_tensor(finished_run, caplog, override, allowed):
    cfg, *_ = finished_run
    again = apply_overrides(cfg, [override])
    field = override[2:].split("=")[0]
    if allowed:
        with caplog.at_level(logging.INFO, logger="vidapter"):
            assert fit(again)["history"] == load_checkpoint(f"{cfg.train.run_dir}/last.pt")["history"]
        assert f"resuming with changed settings: {field}:" in caplog.text
    else:
        with pytest.raises(TrainError, match=f"written with {field}=.*add --{field}="):
            fit(again)


def test_resume_reads_a_checkpoint_whose_config_lacks_a_later_field(finished_run, tmp_path, caplog):
    """A field added after the checkpoint was written takes its default: the run resumes."""
    cfg, *_ = finished_run
    state = load_checkpoint(f"{cfg.train.run_dir}/last.pt")
    del state["config"]["model"]["lora"]["targets"], state["config"]["data"]["cache_decoded"]
    save_checkpoint(state, tmp_path / "last.pt")
    with caplog.at_level(logging.INFO, logger="vidapter"):
        fit(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, run_dir=str(tmp_path))))
    assert f"resumed from {tmp_path / 'last.pt'} at epoch 2" in caplog.text


@pytest.mark.parametrize("method", ["aim", "lora", "zeroi2v", "st_adapter"])
def test_adapter_layers_reach_every_per_layer_method(method):
    """model.adapter_layers=1 (of 2): the method's modules and the head shifts in block 1 only."""
    adapters = ["spatial", "temporal", "joint"] if method == "aim" else []
    m = ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=5, method=method, adapters=adapters,
                    adapter_layers="1", head_shifts=[0, 1, -1, 0])  # fmt: skip
    model = build_model(m)
    everywhere = build_model(dataclasses.replace(m, adapter_layers="all"))
    blocks = {n.split(".")[2] for n, p in model.named_parameters() if p.requires_grad and ".blocks." in n}
    assert blocks == {"1"}
    assert {n.split(".")[2] for n, p in everywhere.named_parameters() if p.requires_grad and ".blocks." in n} == {
        "0", "1"}  # fmt: skip
    assert [getattr(b.attn, "head_shifts", ()) for b in model.backbone.blocks] == [(), (0, 1, -1, 0)]


def test_adapter_layers_are_refused_where_they_cannot_apply():
    m = ModelConfig(backbone="tiny_clip", num_frames=4, num_classes=5, method="evl", adapters=[], adapter_layers="1")
    with pytest.raises(ConfigError, match="model.adapter_layers=1 does not apply to model.method=evl"):
        build_model(m)


@pytest.mark.parametrize("unreadable, videos", [("exclude", 13), ("wrong", 15)])
def test_eval_says_what_it_evaluated(finished_run, broken_test_list, tmp_path, capsys, unreadable, videos):
    cfg, *_ = finished_run
    listing, broken = broken_test_list
    report = tmp_path / "m.json"
    args = ["eval", cfg.train.run_dir, f"--data.test_list={listing}", "--json", str(report), "--unreadable", unreadable]
    assert main(args) == 0
    out = capsys.readouterr().out
    how = "left out" if unreadable == "exclude" else "counted as misses"
    assert f"evaluated 13 of 15 videos (2 unreadable, {how})" in out and f"unreadable: {broken[0]}: " in out
    metrics = json.loads(report.read_text())
    assert (metrics["videos"], metrics["read"], metrics["total"], metrics["unreadable"]) == (videos, 13, 15, unreadable)
    assert [e["path"] for e in metrics["excluded"]] == broken


def test_pack_refusal_is_one_line(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("../outside.mp4 0\n")
    assert main(["data", "pack", str(tmp_path / "train.txt"), "--out", str(tmp_path / "packed")]) == 2
    err = capsys.readouterr().err
    assert err == f"vidapter: error: {tmp_path / 'train.txt'}:1: '../outside.mp4' would be written outside the " \
                  "output folder: paths in a list to pack must be relative to --root and stay below it\n"  # fmt: skip

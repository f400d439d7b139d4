"""Export to ONNX and torch.export: every method and every image family (tiny models), merged LoRA and ZeroI2V, run
by onnxruntime at batch 1 and 3 with the PyTorch model's logits; the command writes both programs with their
metadata and fails above its tolerance."""

from __future__ import annotations

import json

import pytest
import torch
from runs import method_args

from vidapter.adapters.registry import METHODS
from vidapter.classifier import build_model, load_model, merge_adapters
from vidapter.cli import main
from vidapter.config import apply_overrides
from vidapter.models.family import FAMILIES
from vidapter.presets import get_preset

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# every family's tiny row beside one method, so that the cases cover every method and every family once; a method
# with its own text head takes the CLIP row (its text tower)
ROWS = [next(r for r in f.tiny if r.startswith("tiny_")) for f in FAMILIES.values()]
TEXT = [m for m in METHODS if METHODS[m].head is not None]
OTHERS = [r for r in ROWS if r != "tiny_clip"]
PAIRS = [(m, "tiny_clip") for m in TEXT] + [(m, OTHERS[i]) for i, m in enumerate(m for m in METHODS if m not in TEXT)]
PAIRS += [("aim", r) for r in OTHERS[len(METHODS) - len(TEXT) :]]
CASES = [(m, r, False) for m, r in PAIRS] + [("lora", "tiny_clip", True), ("zeroi2v", "tiny_dinov2", True)]


def _model(method: str, row: str, clip_file, merge: bool):
    cfg = get_preset("synthetic")
    pretrained = [f"--model.pretrained={clip_file}"] if METHODS[method].head is not None else ["--model.pretrained="]
    cfg = apply_overrides(cfg, [*method_args(method), f"--model.backbone={row}", *pretrained, "--model.num_frames=4",
                                "--model.num_classes=3"])  # fmt: skip
    model = build_model(cfg.model, class_names=["grow", "shrink", "spin"]).eval()
    with torch.no_grad():  # adapters away from their identity initialisation, so that they count in the logits
        for n, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n))))
    if merge:
        cfg, _ = merge_adapters(model, cfg)
    return model, cfg


@pytest.mark.parametrize("method, row, merge", CASES, ids=[f"{m}-{r}{'-merged' * g}" for m, r, g in CASES])
def test_every_method_and_family_exports_to_onnx(method, row, merge, clip_file, tmp_path):
    from vidapter.export import check_exported, check_inputs, export_onnx

    model, cfg = _model(method, row, clip_file, merge)
    path = export_onnx(model, cfg, tmp_path / "m.onnx", optimize=False)
    diff, peak = check_exported(path, model, cfg, check_inputs(model, cfg))  # batch 1 and 3: the batch is dynamic
    assert diff <= 1e-4 * (1 + peak) and peak > 0, (diff, peak)


def test_export_command_writes_and_checks_both_programs(model_dir, tmp_path, capsys, monkeypatch):
    from vidapter import export
    from vidapter.export import read_metadata, runner

    onnx, pt2 = tmp_path / "m.onnx", tmp_path / "m.pt2"
    assert main(["export", str(model_dir), "--onnx", str(onnx), "--torch-export", str(pt2)]) == 0
    out = capsys.readouterr().out
    assert out.count("largest logit difference to PyTorch") == 2 and '"frames": 8' in out
    model, cfg, names = load_model(model_dir)
    for path in (onnx, pt2):
        meta = read_metadata(path)
        assert (meta["format"], meta["version"], meta["classes"]) == ("vidapter-export", 1, names)
        assert meta["preprocessing"]["frames"] == 8 and meta["preprocessing"]["size"] == 32
        assert meta["preprocessing"]["mean"] == list(model.backbone.facts.mean) and meta["versions"]["torch"]
    assert read_metadata(onnx)["opset"] == 18
    x = torch.randn(5, 3, 8, 32, 32)  # a batch the check did not use
    with torch.no_grad():
        want = model.eval()(x).numpy()
    for path in (onnx, pt2):
        assert abs(runner(path)(x.numpy()) - want).max() < 1e-4

    u8 = tmp_path / "u8.pt2"  # uint8 frames in, the normalisation inside
    assert main(["export", str(model_dir), "--torch-export", str(u8), "--uint8"]) == 0
    frames = torch.randint(0, 256, (2, 8, 32, 32, 3), dtype=torch.uint8)
    mean, std = torch.tensor(model.backbone.facts.mean), torch.tensor(model.backbone.facts.std)
    video = ((frames.float() - mean) / std).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(runner(u8)(frames.numpy())), model(video), atol=1e-4, rtol=0)
    assert read_metadata(u8)["preprocessing"]["normalisation"] == "inside the program"

    bad = tmp_path / "bad.pt2"  # a program that computes otherwise
    monkeypatch.setattr(export, "export_torch", lambda *a, **k: bad.write_bytes(b"x") and bad)
    monkeypatch.setattr(export, "check_exported", lambda *a, **k: (0.5, 1.0))
    assert main(["export", str(model_dir), "--torch-export", str(bad)]) == 2
    assert "logits differ from the model's by 5.00e-01, above the tolerance 0.0001 x 2" in capsys.readouterr().err
    assert main(["export", str(model_dir), "--uint8", "--model-dir", str(tmp_path / "d")]) == 2
    assert json.dumps(read_metadata(onnx)["preprocessing"])  # plain JSON

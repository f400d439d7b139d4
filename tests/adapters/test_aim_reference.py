"""Released AIM checkpoints (MMAction2 layout) -> vidapter: same logits as the reference model."""

from __future__ import annotations

import pytest
import torch
from peers import HEADS, PATCH, SIZE, WIDTH, randomize_
from reference.aim import I3DHead, Recognizer3D, ViT_CLIP

from vidapter.classifier import from_pretrained
from vidapter.cli import main
from vidapter.models.convert import ConversionError, aim_official_to_vidapter

T, K = 4, 7


def _reference(scale: float, num_tadapter: int, seed: int = 0) -> Recognizer3D:
    backbone = ViT_CLIP(SIZE, T, PATCH, WIDTH, 2, HEADS, scale, num_tadapter)
    return randomize_(Recognizer3D(backbone, I3DHead(K, WIDTH)), seed).eval()


def _save_official(ref: Recognizer3D, path) -> None:
    meta = {"mmcv_version": "1.4.0", "time": "Thu Sep 22 2022", "epoch": 30, "config": "model = dict(...)"}
    torch.save({"meta": meta, "state_dict": ref.state_dict(), "optimizer": {}}, path)


@pytest.mark.parametrize("preset, scale, num_tadapter", [("k400_vitb16_8f", 0.5, 1), ("ssv2_vitb16_8f", 1.0, 2)])
def test_convert_aim_official_gives_reference_logits(tmp_path, video, preset, scale, num_tadapter, capsys):
    ref = _reference(scale, num_tadapter)
    _save_official(ref, tmp_path / "aim.pth")
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"class{i}" for i in range(K)) + "\n")
    rc = main(
        ["convert", "aim-official", str(tmp_path / "aim.pth"), str(tmp_path / "out"), "--preset", preset,
         "--class-names", str(names), "--model.backbone=tiny_clip"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    model, cfg, class_names = from_pretrained(tmp_path / "out")
    assert (cfg.model.num_frames, cfg.model.num_classes, cfg.model.aim.scale) == (T, K, scale)
    assert class_names == [f"class{i}" for i in range(K)]
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(video), ref(video), atol=1e-5, rtol=0)


def test_converter_maps_every_reference_key(tmp_path):
    sd = _reference(1.0, 2).state_dict()
    out = aim_official_to_vidapter(sd)
    assert len(out) == len(sd) - 1  # backbone.proj is dropped
    assert (
        out["backbone.blocks.1.t_adapter_in.fc2.weight"]
        is sd["backbone.transformer.resblocks.1.T_Adapter_in.D_fc2.weight"]
    )
    assert out["temporal_embed"] is sd["backbone.temporal_embedding"]
    assert out["head.fc.bias"] is sd["cls_head.fc_cls.bias"]


def test_unknown_key_in_official_checkpoint_is_named():
    sd = _reference(0.5, 1).state_dict()
    sd["backbone.transformer.resblocks.0.X_Adapter.D_fc1.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"X_Adapter\.D_fc1\.weight"):
        aim_official_to_vidapter(sd)


def test_preset_that_does_not_fit_is_refused(tmp_path, capsys):
    _save_official(_reference(1.0, 2), tmp_path / "aim.pth")
    rc = main(["convert", "aim-official", str(tmp_path / "aim.pth"), str(tmp_path / "o"), "--preset", "k400_vitb16_8f",
               "--model.backbone=tiny_clip"])  # fmt: skip
    assert rc == 1  # the file does not fit: a file error
    err = capsys.readouterr().err
    assert "unexpected: backbone.blocks.0.t_adapter_in.fc1.bias" in err and "does not fit preset" in err


def test_reference_runs_wherever_its_weights_are():
    """Every tensor the reference design makes in forward follows its input's device (the meta device stands in for
    CUDA here: a tensor made on the CPU by default would be refused), so the GPU benchmarks can run it."""
    ref = _reference(0.5, 1).to("meta")
    out = ref(torch.randn(2, 3, T, SIZE, SIZE, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, K)

"""AIM trains on every image family: the engine end to end on each tiny structure, from a file in a published layout,
and the counts of each family preset."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from peers import TIMM_FAMILIES, timm_family
from runs import train_args
from safetensors.torch import save_file

from vidapter.adapters.peft import count_parameters
from vidapter.classifier import build_model
from vidapter.cli import main
from vidapter.config import flatten
from vidapter.presets import FAMILIES, get_preset


@pytest.mark.parametrize("row", sorted(TIMM_FAMILIES))
def test_aim_trains_on_every_family(data, tmp_path, row):
    """Image weights from a timm file of the row's structure, two steps of AIM, evaluation: the loss is finite and
    the adapters moved while the image weights did not."""
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in timm_family(row).state_dict().items()}, str(weights))
    run = tmp_path / "run"
    extra = [f"--model.backbone={row}", f"--model.pretrained={weights}", "--model.num_frames=4", "--train.epochs=1",
             "--train.max_steps_per_epoch=2", "--data.cache_decoded=false"]  # fmt: skip
    assert main(["train", *train_args(data, run, *extra)]) == 0
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r[k] for r in logs for k in ("train_loss", "val_loss") if k in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    from vidapter.classifier import load_model

    model, _, _ = load_model(run / "model")
    image = timm_family(row).state_dict()
    fc2 = [p for n, p in model.named_parameters() if "t_adapter.fc2.weight" in n]
    assert fc2 and any(p.abs().sum() > 0 for p in fc2)  # zero at initialisation: training moved it
    name = "blocks.0.attn.proj.weight"  # frozen, and a key every layout shares
    assert torch.equal(model.backbone.state_dict()[name], image[name])


# (trainable, total) of each family's AIM preset, K400 and SSv2 heads, as `vidapter info` prints them: AIM's trained
# set is the same size on every ViT-B (adapters, temporal embedding, final norm, head); the frozen image models differ
# (SigLIP's and PE's pooling heads stay in the model, frozen).
FAMILY_COUNTS = {
    "laion2b_b16": ((10_966_672, 96_764_560), (14_343_342, 100_141_230)),
    "siglip_b16": ((10_966_672, 103_849_360), (14_343_342, 107_226_030)),
    "siglip2_b16": ((10_966_672, 103_849_360), (14_343_342, 107_226_030)),
    "dinov2_b14": ((10_966_672, 96_690_064), (14_343_342, 100_066_734)),
    "dinov3_b16": ((10_966_672, 96_634_000), (14_343_342, 100_010_670)),
    "pe_core_b16": ((10_966_672, 103_851_664), (14_343_342, 107_228_334)),
    "eva02_b16": ((10_966_672, 96_843_664), (14_343_342, 100_220_334)),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_presets(family):
    assert set(FAMILY_COUNTS) == set(FAMILIES)
    for dataset, want in zip(("k400", "ssv2"), FAMILY_COUNTS[family], strict=True):
        cfg = get_preset(f"{dataset}_{family}_8f")
        assert cfg.data.mean is None and cfg.model.backbone == FAMILIES[family][0]
        with torch.device("meta"):
            counts = count_parameters(build_model(dataclasses.replace(cfg.model, pretrained=None)))
        assert (counts["trainable"], counts["total"]) == want, (dataset, counts)
        # AIM's audited recipe (tests/test_recipes.py) with only the backbone, its weights, frame size and mean/std
        base = get_preset(f"{dataset}_vitb16_8f")
        ours, theirs = flatten(cfg), flatten(base)
        changed = {k for k, v in ours.items() if v != theirs[k]}
        assert changed <= {"model.backbone", "model.pretrained", "model.image_size", "data.mean", "data.std"}

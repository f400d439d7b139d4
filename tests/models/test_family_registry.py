"""The image families' registry: every family one module that declares its rows, weights and layouts; a family of
your own joins the tables the model builder and the loaders read."""

from __future__ import annotations

import pytest
import torch
from peers import timm_vit

from vidapter.models.backbones import BACKBONES, FAMILIES, WEIGHTS, Family, Weights, register_family
from vidapter.models.families.in21k import in21k_facts
from vidapter.models.layouts import LAYOUTS
from vidapter.models.pretrained import WeightsError, check_metadata, load_backbone
from vidapter.models.vit import build_vit


def test_every_family_is_one_module_with_its_rows_weights_and_layouts():
    assert list(FAMILIES) == ["clip", "in21k", "open_clip", "siglip", "dinov2", "dinov3", "pe_core", "eva02"]
    layouts = {x.name for x in LAYOUTS if x.image}
    for family in FAMILIES.values():
        assert type(family).__module__ == "vidapter.models.family"
        assert family.rows and family.tiny and family.weights and set(family.layouts) <= layouts, family.name
        assert all(BACKBONES[r].family == family.name for r in {**family.rows, **family.tiny})
    assert set(BACKBONES) == {r for f in FAMILIES.values() for r in {**f.rows, **f.tiny}}
    assert set(WEIGHTS) == {w for f in FAMILIES.values() for w in f.weights}


@pytest.fixture
def restore_tables():
    saved = dict(FAMILIES), dict(BACKBONES), dict(WEIGHTS)
    yield
    for table, before in zip((FAMILIES, BACKBONES, WEIGHTS), saved, strict=True):
        table.clear()
        table.update(before)


def test_a_family_of_your_own_loads_its_files(restore_tables, tmp_path, images):
    """A timm-layout ViT of one's own: its row builds, a file of its weights loads exactly by the registered name."""
    from dataclasses import replace

    torch.save(timm_vit().state_dict(), tmp_path / "mine.pth")
    facts = replace(in21k_facts(64, 2, 4, 8, 32), family="my_vit")
    register_family(Family(name="my_vit", about="mine", rows={"my_vit_tiny": facts},
                           weights={"mine:tiny": Weights("my_vit_tiny", (tmp_path / "mine.pth").as_uri())},
                           layouts=("timm",), timm_architectures=r"my_vit_.+"))  # fmt: skip
    assert list(BACKBONES)[-1] != "my_vit_tiny" and "my_vit_tiny" in BACKBONES  # its row before the tiny rows
    vit = build_vit("my_vit_tiny").eval()
    report = load_backbone(vit, str(tmp_path / "mine.pth"))
    assert report.format == "timm" and WEIGHTS["mine:tiny"].backbone == "my_vit_tiny"
    with torch.no_grad():
        peer = timm_vit().eval()
        torch.testing.assert_close(vit(images), peer.forward_head(peer.forward_features(images), pre_logits=True))
    (tmp_path / "config.json").write_text('{"architecture": "my_vit_tiny_patch8"}')
    with pytest.raises(WeightsError, match="architecture 'my_vit_tiny_patch8' is a my_vit model, but the backbone"):
        check_metadata(tmp_path / "mine.pth", BACKBONES["tiny_in21k"])


def test_a_family_may_not_take_anothers_names(restore_tables):
    row = in21k_facts(64, 2, 4, 8, 32)
    with pytest.raises(ValueError, match="a family named 'in21k' is registered already"):
        register_family(Family(name="in21k", about="", rows={}))
    with pytest.raises(ValueError, match="family 'x': backbone row 'tiny_in21k' is another family's"):
        register_family(Family(name="x", about="", rows={"tiny_in21k": row}))
    with pytest.raises(ValueError, match="family 'x': row 'x_row' says family 'in21k'"):
        register_family(Family(name="x", about="", rows={"x_row": row}))
    with pytest.raises(ValueError, match="family 'in21k': weights 'w' load into 'nope', none of its rows"):
        register_family(Family(name="in21k", about="", rows={"in21k_x": row}, weights={"w": Weights("nope", "")}),
                        replace=True)  # fmt: skip

"""Config dicts of schema version 2 (flat method fields such as ``model.lora_r``), as the code of that version wrote
them for every preset (config_v2/presets.json, ``to_dict(get_preset(name))`` for each name): each reads back as today's
preset of that name, so run directories, checkpoints and model directories of that version evaluate and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidapter.config import from_dict, to_dict
from vidapter.presets import get_preset, list_presets

WRITTEN = json.loads((Path(__file__).parent / "config_v2" / "presets.json").read_text())


def test_the_file_holds_every_preset_of_that_version():
    assert len(WRITTEN) == 43 and set(WRITTEN) <= set(list_presets())  # presets added since are not in it
    assert {d["version"] for d in WRITTEN.values()} == {2}


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_version_2_config_reads_as_the_preset(name):
    assert to_dict(from_dict(WRITTEN[name], where=name)) == to_dict(get_preset(name))

"""Each method's settings as its own section of the model config (``model.lora.r``): registered by the method, read
and written by every config path (overrides, files, ``vidapter config``, resume checks), old flat names moved on read
and refused, naming the new place, when written today."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vidapter.adapters.registry import METHODS, Method, register_method
from vidapter.config import (
    CONFIG_VERSION,
    MODEL_SECTIONS,
    MOVED_IN_3,
    Config,
    ConfigError,
    apply_overrides,
    describe,
    flatten,
    from_dict,
    register_model_section,
    resume_differences,
    to_dict,
)

SECTIONED = sorted(name for name, m in METHODS.items() if m.config is not None)


def test_every_method_with_settings_has_its_section():
    assert {n: METHODS[n].config for n in SECTIONED} == MODEL_SECTIONS
    assert {"aim", "lora", "zeroi2v", "st_adapter", "evl"} <= set(SECTIONED)
    # every flat name of config version 2 has a place, in a section that has that field
    for old, places in MOVED_IN_3.items():
        for section, name in places:
            assert name in {f.name for f in dataclasses.fields(MODEL_SECTIONS[section])}, old


@pytest.mark.parametrize("name", SECTIONED)
def test_a_section_is_read_and_written_by_every_config_path(name):
    cls = MODEL_SECTIONS[name]
    cfg = Config()
    assert getattr(cfg.model, name) == cls() and to_dict(cfg)["model"][name] == dataclasses.asdict(cls())
    rows = {r["field"]: r for r in describe(cfg)}
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        assert rows[f"model.{name}.{f.name}"]["default"] == default
        # the override of each field reaches the section; the file holds it; the file reads back equal
        changed = apply_overrides(cfg, [f"--model.{name}.{f.name}={json.dumps(default)}"])
        assert changed == cfg
        assert flatten(changed)[f"model.{name}.{f.name}"] == default
    data = json.loads(json.dumps(to_dict(cfg)))
    assert data["version"] == CONFIG_VERSION and from_dict(data) == cfg


def test_flat_fields_of_version_2_move_to_the_files_method():
    def v2(**model):
        return {"version": 2, "model": model}

    zero = from_dict(v2(method="zeroi2v", ratio=0.125, num_tadapter=2, zeroi2v_dropout=0.0))
    assert (zero.model.zeroi2v.ratio, zero.model.zeroi2v.num_tadapter, zero.model.zeroi2v.dropout) == (0.125, 2, 0.0)
    assert zero.model.aim == MODEL_SECTIONS["aim"]()  # ZeroI2V takes no AIM adapters: AIM's keep their defaults
    lora = from_dict(v2(method="lora", ratio=0.125, lora_r=4, lora_targets=["qkv"], st_width=16, evl_layers=2))
    assert (lora.model.aim.ratio, lora.model.lora.r, lora.model.lora.targets) == (0.125, 4, ["qkv"])
    assert (lora.model.zeroi2v.ratio, lora.model.st_adapter.width, lora.model.evl.layers) == (0.25, 16, 2)
    assert from_dict(v2(scale=1.0)).model.aim.scale == 1.0  # no method written: AIM's


def test_old_flat_names_written_today_are_refused_naming_the_new_place():
    with pytest.raises(ConfigError, match=r"model has no field 'lora_r' \(it is now model.lora.r\)"):
        apply_overrides(Config(), ["--model.lora_r=16"])
    data = to_dict(Config())
    data["model"]["st_width"] = 16
    with pytest.raises(ConfigError, match=r"config.model: unknown field\(s\) \['st_width'\].*st_width is now "
                       r"config.model.st_adapter.width"):  # fmt: skip
        from_dict(data)
    with pytest.raises(ConfigError, match=r"model.lora has no field 'rank'; fields: \['alpha', 'dropout', 'r', "):
        apply_overrides(Config(), ["--model.lora.rank=16"])
    with pytest.raises(ConfigError, match="config.model.lora.r: expected an integer, got 'x'"):
        from_dict({**data, "model": {"lora": {"r": "x"}}})


@pytest.mark.parametrize(
    "override, message",
    [
        ("--model.aim.num_tadapter=3", "model.aim.num_tadapter must be 1 or 2, got 3"),
        ("--model.zeroi2v.ratio=0", r"model.zeroi2v.ratio must be in \(0, 1\], got 0"),
        ("--model.lora.r=0", "model.lora.r must be >= 1, got 0"),
        ("--model.lora.targets=qkv,out", r"model.lora.targets must be a non-empty subset of \['qkv', 'proj', "),
        ("--model.st_adapter.kernel=2", "model.st_adapter needs a positive width and an odd kernel, got 384 and 2"),
        ("--model.st_adapter.positions=", r"model.st_adapter.positions must be a non-empty subset of \['attn'"),
    ],
)
def test_a_section_refuses_what_its_method_cannot_build(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_resume_compares_section_fields():
    saved = Config()
    conflicts, changes = resume_differences(saved, apply_overrides(saved, ["--model.lora.r=4",
                                                                           "--model.lora.dropout=0.1"]))  # fmt: skip
    assert conflicts == [("model.lora.r", 8, 4)] and changes == ["model.lora.dropout: 0.0 -> 0.1"]


@dataclasses.dataclass
class PoolConfig:
    heads: int = 2

    def __post_init__(self):
        if self.heads < 1:
            raise ConfigError(f"model.my_pool.heads must be >= 1, got {self.heads}")


@pytest.fixture
def users_method():
    method = Method(name="my_pool", paper="-", trains="head", adapt=lambda vit, cfg, layers: None, config=PoolConfig)
    register_method(method)
    yield method
    METHODS.pop("my_pool"), MODEL_SECTIONS.pop("my_pool")


def test_a_users_method_brings_its_section(users_method):
    cfg = apply_overrides(Config(), ["--model.method=my_pool", "--model.my_pool.heads=4"])
    assert cfg.model.my_pool == PoolConfig(heads=4) and to_dict(cfg)["model"]["my_pool"] == {"heads": 4}
    assert from_dict(to_dict(cfg)) == cfg
    assert {"field": "model.my_pool.heads", "type": "int", "value": 4, "default": 2} in describe(cfg)
    with pytest.raises(ConfigError, match="model.my_pool.heads must be >= 1, got 0"):
        apply_overrides(cfg, ["--model.my_pool.heads=0"])
    other = dataclasses.make_dataclass("Other", [("heads", int, 1)])
    with pytest.raises(ValueError, match="a model section named 'my_pool' is registered already"):
        register_model_section("my_pool", other)
    with pytest.raises(ValueError, match="model section 'backbone' would hide the model field of that name"):
        register_model_section("backbone", other)

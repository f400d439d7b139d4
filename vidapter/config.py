"""Run configuration: dataclasses, never passed into modules, with type-checked ``--section.field=value`` overrides."""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field

from vidapter.errors import ConfigError


@dataclass
class ModelConfig:
    """What to build. Defaults are AIM ViT-B/16 on Kinetics-400 at 8 frames (docs/model.md)."""

    backbone: str = "clip_vitb16"  # a row of vidapter.models.vit.BACKBONES
    pretrained: str | None = None  # weights name ("openai:ViT-B/16") or path; None = random init
    image_size: int | None = None  # None: the backbone's native size; else positional embeddings are resized
    num_frames: int = 8
    num_classes: int = 400
    adapters: list[str] = field(default_factory=lambda: ["spatial", "temporal", "joint"])  # [] = space-only
    adapter_layers: str = "all"  # all | bottom:K | top:K | every_other | comma list (Table 7)
    drop_path_rate: float = 0.2
    dropout: float = 0.5
    finetune: str = "adapters"  # adapters (AIM's trainable set) | full (everything trains)
    temporal_embed: bool | None = None  # None: present iff any adapter is (reference AIM: every variant has it)
    grad_checkpointing: bool = False  # whole-block activation checkpointing (least memory, one more forward)
    recompute: str = "pointwise"  # none | pointwise | mlp: what backward keeps vs recomputes (vit.set_recompute)
    temporal_attention: str = "auto"  # auto | sdpa | products | frames (aim.set_temporal_attention; same function)
    method: str = "aim"  # aim: AIM's adapters (model.adapters); lora: also LoRA on the blocks' linear layers, with
    # AIM's adapters of model.adapters ([] for LoRA alone, [temporal] for LoRA + AIM's temporal pass); zeroi2v,
    # st_adapter, evl (model.adapters must be []): vidapter/adapters/, README "Methods"
    head_shifts: list[int] = field(default_factory=list)  # STDHA (adapters/stdha.py): frame offset of heads 0, 1, ...
    # in every block's attention, e.g. [-1, 1] (ZeroI2V's ViT-B K400); [] = none
    feature: str | None = None  # per-frame feature: cls | pool (the backbone's pretrained pooling head: SigLIP, PE)
    # | mean (of patch tokens); None: the backbone row's own (models/backbones.py; README "Image backbones")
    head: str = "linear"  # linear | text: CLIP's cosine classifier on the class names' text embeddings (a learnable
    # temperature from the model's logit scale; needs a backbone with a text tower and data.class_names)
    head_init: str = "random"  # random | text: the linear head starts from the class names' text embeddings
    head_train: bool = True  # head=text: the class embeddings train (Open-VCLIP's tuned head) or stay fixed
    templates: list[str] | None = None  # the text head's prompts, "{}" for the name; None: CLIP's 28 Kinetics ones
    sections: dict[str, typing.Any] = field(default_factory=dict)  # each method's own settings by its name:
    # cfg.model.lora.r, --model.lora.r=16, model.lora.r in files (register_model_section); defaults filled in

    def __post_init__(self):
        if self.head not in ("linear", "text"):
            raise ConfigError(f"model.head must be linear or text, got {self.head!r}")
        if self.head_init not in ("random", "text"):
            raise ConfigError(f"model.head_init must be random or text, got {self.head_init!r}")
        if self.head == "text" and self.head_init == "text":
            raise ConfigError("model.head_init=text starts a linear head from the text embeddings; model.head=text "
                              "is built from them already: leave head_init at random")  # fmt: skip
        given = self.sections
        if not isinstance(given, dict):
            raise ConfigError(f"model.sections: expected a dict of section name -> settings, got {given!r}")
        unknown = sorted(set(given) - set(MODEL_SECTIONS))
        if unknown:
            raise ConfigError(f"model: unknown section(s) {unknown}; sections: {sorted(MODEL_SECTIONS)}")
        sections = {}
        for name, cls in MODEL_SECTIONS.items():
            value = given.get(name)
            if value is None:
                value = cls()
            elif isinstance(value, dict):
                value = from_dict(value, cls, f"model.{name}")
            elif not isinstance(value, cls):
                raise ConfigError(f"model.{name}: expected {cls.__name__} or a dict, got {type(value).__name__}")
            sections[name] = copy.deepcopy(value)
        object.__setattr__(self, "sections", sections)

    def __getattr__(self, name: str):
        sections = self.__dict__.get("sections")
        if sections is not None and name in MODEL_SECTIONS:
            if name not in sections:  # registered after this config was made
                sections[name] = MODEL_SECTIONS[name]()
            return sections[name]
        hint = " (its method registers it: import vidapter.adapters)" if sections == {} else ""
        raise AttributeError(f"ModelConfig has no field or section {name!r}{hint}")

    def __setattr__(self, name: str, value):
        if name in MODEL_SECTIONS and name not in self.__dataclass_fields__:
            if not isinstance(value, MODEL_SECTIONS[name]):
                raise ConfigError(f"model.{name}: expected {MODEL_SECTIONS[name].__name__}, got {value!r}")
            self.sections[name] = value
        else:
            object.__setattr__(self, name, value)


# A method's own settings: a dataclass its module registers under the method's name (Method.config), so that
# ``ModelConfig`` has ``cfg.model.<name>`` and files carry ``model: {<name>: {...}}``. The method modules of
# vidapter.adapters register theirs when imported; everything that builds a model imports them.
MODEL_SECTIONS: dict[str, type] = {}


def register_model_section(name: str, cls: type, *, replace: bool = False) -> type:
    """Make the dataclass ``cls`` the settings section ``model.<name>``; returns it."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"model section {name!r}: expected a dataclass, got {cls!r}")
    if name in {f.name for f in dataclasses.fields(ModelConfig)}:
        raise ValueError(f"model section {name!r} would hide the model field of that name")
    if name in MODEL_SECTIONS and MODEL_SECTIONS[name] is not cls and not replace:
        raise ValueError(f"a model section named {name!r} is registered already (replace=True redefines it)")
    MODEL_SECTIONS[name] = cls
    return cls


@dataclass
class DataConfig:
    """Where the videos are and how clips are sampled and augmented. Defaults: Kinetics-400 8x16 dense (section 6)."""

    root: str | None = None  # folder the list paths are relative to (default: each list's folder)
    train_list: str | None = None
    val_list: str | None = None
    test_list: str | None = None
    class_names: str | None = None  # one name per line; labels in lists may then be names
    format: str = "auto"  # auto | list | csv | rawframes
    frame_template: str = "img_{:05d}.jpg"
    backend: str = "pyav"  # pyav | decord | torchcodec
    sampling: str = "dense"  # dense (clip_len x frame_interval) | uniform (TSN: num_frames segments, centres) |
    # segments_seq (SlowFast's get_seq_frames: SSv2 and Diving-48 in the AIM reference), data/sampling.py
    frame_interval: int = 16  # dense only; clip_len is model.num_frames
    test_clips: int = 3  # temporal views at test time (dense); uniform and segments_seq take 1 clip
    test_crops: int = 1  # spatial views at test time: 1 (centre) or 3
    size: int = 224
    short_side: int = 256  # train and val resize
    test_short_side: int = 224
    area: list[float] = field(default_factory=lambda: [0.08, 1.0])
    short_side_range: list[int] | None = None  # [a, b]: train resizes the short side to a random a..b (bicubic)
    # and crops size x size at random, instead of short_side + random resized crop (ST-Adapter's K400 recipe)
    flip: float = 0.5
    mean: list[float] | None = None  # normalisation on the 0-255 scale; None: the backbone's (ViTFacts)
    std: list[float] | None = None
    randaugment: list[int] | None = None  # [n, m], e.g. [4, 7] on SSv2
    randaugment_impl: str = "imgaug"  # imgaug (the AIM reference's; it also flips half the clips and crops) |
    # torchvision (14 operations, no flip, no crop): data/randaugment.py
    erasing: float = 0.0  # RandomErasing probability (0.25 on SSv2)
    color_jitter: list[float] | None = None  # [brightness, contrast, saturation, hue], MMAction2's ColorJitter;
    # [0.5, 0.5, 0.5, 0.1] (its defaults) in the K400/K700 ViT-L recipes
    normalize: str = "auto"  # step (clips leave the loader as uint8, a quarter of float32's bytes through shared
    # memory and to the GPU; the step normalises on its device, the same numbers) | loader | auto (step unless erasing)
    strict_decode: bool = False
    decode_resize: bool = False  # pyav: resize to short_side while converting to RGB (faster on big sources; not
    # the same pixels as decode-then-resize, benchmarks/data/decode_resize.py measures both)
    workers: int = 8
    cache_decoded: bool = False  # keep every decoded video in memory (per loader process) after its first read: for
    # datasets that fit in RAM several times over, such as the demo's (128 MB decoded); the same clips either way
    seed: int = 0


@dataclass
class OptimConfig:
    """AdamW + cosine with linear warm-up (docs/recipes.md), parameter groups and schedule as the reference
    configs by default (vidapter/optim.py explains both rules of each)."""

    lr: float = 3e-4  # for the global batch of the recipe (64); scale it yourself if you change the batch
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.05
    warmup_epochs: float = 2.5
    warmup_start: float = 0.1  # warm-up rises linearly from warmup_start * lr
    backbone_lr_mult: float = 1.0  # 0.1 for the ViT-L K400/SSv2 recipes: the backbone, its adapters and the
    # temporal embedding (decay_groups=reference: the configs' "backbone" key; norm_bias_embed: backbone.* names)
    decay_groups: str = "reference"  # reference (the configs' custom_keys, mmcv semantics) | norm_bias_embed |
    # norms_embeds (ZeroI2V) | bias (ST-Adapter) | none (EVL): vidapter/optim.py
    schedule: str = "epoch_cosine"  # epoch_cosine (mmcv CosineAnnealing by epoch + per-step warm-up) | step_cosine
    final_lr: float = 0.0  # step_cosine: where the cosine ends, as a fraction of lr (ViFi-CLIP's timm lr_min: 0.01)
    temporal_embed_lr_mult: float = 1.0
    clip_grad: float | None = None  # max gradient norm
    label_smoothing: float = 0.0  # 0.1 on SSv2
    mixup: float = 0.0  # alpha; 0 = off
    cutmix: float = 0.0


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 8  # per process; the recipes' 64 = 8 GPUs x 8
    accum_steps: int = 1
    amp: str = "bf16"  # none | bf16 | fp16 (CUDA only, with a GradScaler; the CPU refuses it)
    compile: bool | str = "auto"  # torch.compile: auto (CUDA with Triton, sm70+; not the CPU) | true | false
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs: small batches)
    frozen_dtype: str = "auto"  # frozen Linear/Conv weights stored in: auto (bf16 under amp=bf16, exact) | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    run_dir: str | None = None  # default runs/<preset name>
    resume: str = "auto"  # auto (continue the run directory if it has a checkpoint) | never | path to a checkpoint
    random_init: bool = False  # allow training a backbone whose weights were not loaded
    max_steps_per_epoch: int | None = None  # cut epochs short (smoke tests)
    ckpt_every: int = 100  # also write last.pt every this many optimizer steps (and at every epoch end)
    log_every: int = 10
    eval_every: int = 1  # epochs
    seed: int = 0


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# The schema of the config dict that run directories, checkpoints, model directories and adapter exports carry.
# 1: vidapter 0.1 and 0.2 (written without a version); 2: the version is written; 3: each method's settings in its
# own section (model.lora.r, not model.lora_r). Reading an older dict migrates it step by step (``migrate``): a field
# added since takes the value that meant what the old version did, a moved field goes to its new place, so a file of
# any earlier version evaluates and resumes as it did.
CONFIG_VERSION = 3

# Fields added after vidapter 0.1, with the value 0.1 trained with (its files lack them; 0.2's have them all).
_ADDED_SINCE_0_1 = {
    "optim": {"decay_groups": "norm_bias_embed", "schedule": "step_cosine", "backbone_lr_mult": 1.0,
              "temporal_embed_lr_mult": 1.0},
}  # fmt: skip

# The flat model fields of config version 2 that moved into a method's section, as (section, field) in order: a
# field that several methods read (AIM's and ZeroI2V's adapters both took ratio, scale and num_tadapter) goes to the
# file's own method where it is one of them, else to the first (only one of them could use it: ZeroI2V does not
# combine with AIM's adapters).
MOVED_IN_3 = {
    "ratio": [("aim", "ratio"), ("zeroi2v", "ratio")],
    "scale": [("aim", "scale"), ("zeroi2v", "scale")],
    "num_tadapter": [("aim", "num_tadapter"), ("zeroi2v", "num_tadapter")],
    "lora_r": [("lora", "r")],
    "lora_alpha": [("lora", "alpha")],
    "lora_dropout": [("lora", "dropout")],
    "lora_targets": [("lora", "targets")],
    "zeroi2v_dropout": [("zeroi2v", "dropout")],
    "st_width": [("st_adapter", "width")],
    "st_positions": [("st_adapter", "positions")],
    "st_kernel": [("st_adapter", "kernel")],
    "evl_layers": [("evl", "layers")],
}


def _from_v1(data: dict) -> dict:
    for section, added in _ADDED_SINCE_0_1.items():
        for key, value in added.items():
            data.setdefault(section, {}).setdefault(key, value)
    return data


def _from_v2(data: dict) -> dict:
    model = data.get("model")
    if not isinstance(model, dict):
        return data  # from_dict names what is wrong
    method = model.get("method", "aim")
    for old, places in MOVED_IN_3.items():
        if old in model:
            section, name = next(((s, n) for s, n in places if s == method), places[0])
            model.setdefault(section, {})[name] = model.pop(old)
    return data


MIGRATIONS = {1: _from_v1, 2: _from_v2}  # version -> the function that turns a dict of that version into the next one


def _plain(cfg) -> dict:
    """A config dataclass as plain JSON types; a ``ModelConfig``'s sections sit among its fields (model.lora.r)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "sections" and isinstance(cfg, ModelConfig):
            out.update({name: dataclasses.asdict(getattr(cfg, name)) for name in MODEL_SECTIONS})
        elif dataclasses.is_dataclass(value):
            out[f.name] = _plain(value)
        else:
            out[f.name] = copy.deepcopy(value)
    return out


def flatten(cfg: Config) -> dict[str, typing.Any]:
    """Every field of ``cfg`` as {"section.field": value}, a method's settings as "model.lora.r" (no ``name``)."""
    out = {}
    for section, values in _plain(cfg).items():
        for key, value in values.items() if isinstance(values, dict) else ():
            if isinstance(value, dict):
                out.update({f"{section}.{key}.{k}": v for k, v in value.items()})
            else:
                out[f"{section}.{key}"] = value
    return out


def to_dict(cfg: Config) -> dict:
    """The config as plain JSON types, with its schema ``version``."""
    return {"version": CONFIG_VERSION, **_plain(cfg)}


def migrate(data: dict, where: str = "config") -> dict:
    """A config dict of any schema version (none: 1) as this version's, without the ``version`` key; a newer version
    than this vidapter knows is refused (upgrade vidapter to read it)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{where}: version must be a positive integer, got {version!r}")
    if version > CONFIG_VERSION:
        raise ConfigError(f"{where}: written by a newer vidapter (config version {version}; this one reads up to "
                          f"{CONFIG_VERSION}): upgrade vidapter to read it")  # fmt: skip
    data = copy.deepcopy({k: v for k, v in data.items() if k != "version"})
    for v in range(version, CONFIG_VERSION):
        data = MIGRATIONS[v](data)
    return data


def from_dict(data: dict, cls: type = Config, where: str = "config") -> typing.Any:
    """Rebuild a (nested) config dataclass; unknown keys and wrong types raise naming the key. A whole ``Config`` is
    migrated from its schema version first."""
    if cls is Config:
        data = migrate(data, where)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    if cls is ModelConfig:  # its method sections sit among its fields
        names = (names - {"sections"}) | set(MODEL_SECTIONS)
        kwargs["sections"] = {k: from_dict(data[k], MODEL_SECTIONS[k], f"{where}.{k}") for k in MODEL_SECTIONS
                              if k in data}  # fmt: skip
    unknown = set(data) - names
    if unknown:
        moved = [f"{k} is now {where}.{MOVED_IN_3[k][0][0]}.{MOVED_IN_3[k][0][1]}" for k in sorted(unknown)
                 if cls is ModelConfig and k in MOVED_IN_3]  # fmt: skip
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}"
                          + (f" ({'; '.join(moved)})" if moved else ""))  # fmt: skip
    for key, value in data.items():
        if cls is ModelConfig and key in MODEL_SECTIONS:
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(value, hint, f"{where}.{key}")
        else:
            kwargs[key] = _check(value, hint, f"{where}.{key}")
    return cls(**kwargs)


def _check(value: typing.Any, hint: typing.Any, where: str) -> typing.Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(value, a, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {_name(hint)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check(v, args[0], where) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {_name(hint)}, got {value!r}")
    return value


def _name(hint: typing.Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _parse(text: str, hint: typing.Any) -> typing.Any:
    """Command-line text -> Python value: JSON when it parses (numbers, true/false/null, lists), else a string.
    A list field also takes a comma list (``spatial,temporal``) and the empty string for []."""
    if typing.get_origin(hint) is list and not text.startswith("["):
        items = [p for p in text.split(",") if p]
        element = (typing.get_args(hint) or (str,))[0]
        return [_parse(p, element) for p in items] if element in (int, float) else items
    if text in ("none", "None", "null"):
        return None if type(None) in typing.get_args(hint) else text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.field=value`` strings (a leading ``--`` is allowed), a method's settings as
    ``model.<method>.field=value``. Errors name the field and the choices."""
    data = _plain(cfg)
    for item in overrides:
        key, eq, text = item.removeprefix("--").partition("=")
        if not eq:
            raise ConfigError(f"override {item!r}: expected section.field=value")
        section, _, name = key.partition(".")
        sections = {k: v for k, v in typing.get_type_hints(Config).items() if dataclasses.is_dataclass(v)}
        if section not in sections or not name:
            raise ConfigError(f"override {item!r}: unknown section {section!r}; sections: {sorted(sections)}")
        target, cls = data[section], sections[section]
        if section == "model" and name.partition(".")[0] in MODEL_SECTIONS:
            sub, _, name = name.partition(".")
            target, cls, section = target[sub], MODEL_SECTIONS[sub], f"model.{sub}"
        hints = typing.get_type_hints(cls)
        hints.pop("sections", None)
        if name not in hints:
            choices = sorted(hints) + ([f"{s}.*" for s in MODEL_SECTIONS] if cls is ModelConfig else [])
            moved = MOVED_IN_3.get(name) if cls is ModelConfig else None
            hint = f" (it is now model.{moved[0][0]}.{moved[0][1]})" if moved else ""
            raise ConfigError(f"override {item!r}: {section} has no field {name!r}{hint}; fields: {choices}")
        target[name] = _check(_parse(text, hints[name]), hints[name], key)
    return from_dict(data)


# Settings a resumed run may change: they shape no tensor and no optimizer state (memory and speed choices that
# compute the same function, regularisation rates, the weights' name: their digest is compared instead).
FREE_ON_RESUME = frozenset({"model.recompute", "model.temporal_attention", "model.grad_checkpointing",
                            "model.drop_path_rate", "model.dropout", "model.lora.dropout", "model.zeroi2v.dropout",
                            "model.pretrained"})  # fmt: skip
# Optimizer settings that shape its state (the parameter groups) or the schedule.
OPTIMIZER_STATE = ("optim.decay_groups", "optim.schedule", "optim.backbone_lr_mult", "optim.temporal_embed_lr_mult")


def resume_differences(saved: Config, now: Config) -> tuple[list[tuple[str, object, object]], list[str]]:
    """What differs between the config a checkpoint was written with and this run's, both at this schema version:
    (conflicts, changes). A conflict is a model setting outside ``FREE_ON_RESUME`` or one of ``OPTIMIZER_STATE``, as
    (field, saved value, value now); changes are the fields that may differ, as "field: old -> new" text."""
    conflicts, changes = [], []
    old, new = flatten(saved), flatten(now)
    for field_name in (k for k in old if k.startswith("model.")):
        if old[field_name] != new[field_name]:
            if field_name in FREE_ON_RESUME:
                changes.append(f"{field_name}: {old[field_name]} -> {new[field_name]}")
            else:
                conflicts.append((field_name, old[field_name], new[field_name]))
    for field_name in OPTIMIZER_STATE:
        section, key = field_name.split(".")
        before, after = getattr(getattr(saved, section), key), getattr(getattr(now, section), key)
        if before != after:
            conflicts.append((field_name, before, after))
    return conflicts, changes


def describe(cfg: Config) -> list[dict]:
    """Every field of ``cfg`` as {"field": "section.name", "type", "value", "default"} (the default of a plain
    ``Config()``, before any preset), in declaration order, a method's settings after the model's own fields as
    "model.<method>.name": what ``vidapter config`` prints."""
    rows, default = [], Config()
    for section in dataclasses.fields(Config):
        if section.name == "name":
            continue
        ours, base = getattr(cfg, section.name), getattr(default, section.name)
        parts = [(section.name, ours, base)]
        if isinstance(ours, ModelConfig):
            parts += [(f"model.{k}", getattr(ours, k), getattr(base, k)) for k in MODEL_SECTIONS]
        for prefix, obj, obj_default in parts:
            hints = typing.get_type_hints(type(obj))
            for f in dataclasses.fields(obj):
                if f.name == "sections":
                    continue
                hint = hints[f.name]
                kind = str(hint).replace("typing.", "") if typing.get_origin(hint) else _name(hint)
                rows.append({"field": f"{prefix}.{f.name}", "type": kind,
                             "value": getattr(obj, f.name), "default": getattr(obj_default, f.name)})  # fmt: skip
    return rows

"""Released checkpoints of the methods' official code -> vidapter model directories (``vidapter convert``).

Each method declares the kinds it reads (``adapters.registry.Official``): the converter to vidapter's names, whether
the file holds the image weights too, and what the file fixes about the model (classes, frames, the method's sizes).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from vidapter.adapters.peft import trainable_state_dict
from vidapter.adapters.registry import official_kinds
from vidapter.classifier import build_model, save_pretrained
from vidapter.config import Config, ConfigError
from vidapter.data.datasets import read_class_names
from vidapter.models.convert import ConversionError
from vidapter.models.layouts import detect_layout
from vidapter.models.pretrained import WeightsError, check_keys, read_checkpoint


def convert_official(
    kind: str,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: Config,
    *,
    backbone: str | None = None,
    class_names: str | os.PathLike | None = None,
    trust_pickle: bool = False,
) -> tuple[Path, int, Config]:
    """Convert the released ``checkpoint`` of ``kind`` (``vidapter convert --help`` lists them) onto the preset
    ``cfg`` and write a model directory at ``out_dir``; returns (its path, the number of tensors read, its config).
    ``backbone``: the image weights the trained tensors sit on, for kinds whose files hold only those tensors."""
    kinds = official_kinds()
    if kind not in kinds:
        raise ConfigError(f"unknown official checkpoint kind {kind!r}; choose from {', '.join(kinds)}")
    method, official = kinds[kind]
    if cfg.model.method != method.name:
        raise ConfigError(f"{kind} files are {method.name} models; preset {cfg.name} has model.method="
                          f"{cfg.model.method}: choose a {method.name} preset")  # fmt: skip
    cfg = copy.deepcopy(cfg)
    raw = read_checkpoint(checkpoint, trust_pickle=trust_pickle)
    try:
        fmt = detect_layout(raw) if official.whole else official.layout
        if fmt != official.layout:
            raise ConversionError(f"layout is {fmt!r}, expected a released {kind} (MMAction2) checkpoint")
        sd = official.convert(raw)
    except ConversionError as e:
        raise WeightsError(f"{checkpoint}: {e}") from e
    if official.whole and backbone:
        raise ConfigError(f"{kind} files hold their image weights: --backbone does not apply")
    # every weight comes from the checkpoint, or the trained ones from it and the image ones from the backbone
    cfg.model.pretrained = None if official.whole else (backbone or cfg.model.pretrained)
    if not official.whole and not cfg.model.pretrained:
        raise ConfigError(f"{kind} files hold only the trained tensors: name the image weights with --backbone")
    names = read_class_names(class_names) if class_names else None
    official.shape(cfg.model, sd)
    if names is not None:
        cfg.model.num_classes = len(names)
    model = build_model(cfg.model, trust_pickle=trust_pickle, class_names=names)
    target = model.state_dict() if official.whole else trainable_state_dict(model)
    check_keys(sd, target, f"{checkpoint} does not fit preset {cfg.name}")
    model.load_state_dict(sd, strict=official.whole)
    return save_pretrained(model, cfg, out_dir, names), len(sd), cfg

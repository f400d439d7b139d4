"""Zero-shot video classification with your own class names: a CLIP-style model's two towers, no training.

``zero_shot_model(clip, labels)`` is a ``VideoClassifier`` with the frozen image tower, no adapters and a text head
(``model.head=text``): every frame through the image tower and CLIP's image projection, the mean over the clip's
frames of the unnormalised embeddings and one L2 norm (ViFi-CLIP's video embedding), against the labels' text
embeddings (CLIP's prompt ensemble: each template's embedding normalised, their mean normalised again); logits =
exp(logit_scale) x cosine. Its ``predict`` and ``set_class_names`` work as for any model; the test view protocol and
prompts are the preset's (``clip_zero_shot`` by default; ``vifi_zero_shot_32f`` is ViFi-CLIP's evaluation).

``clip`` is a published name (``openai:ViT-B/16``, ``open_clip:ViT-B-16/laion2b_s34b_b88k``) or a file or directory
of a family with a text tower; the backbone row comes from the name, from ``backbone``, or from the file where its
tensors and metadata fit one row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from vidapter.classifier import VideoClassifier, build_model, text_tower_facts
from vidapter.config import Config, apply_overrides
from vidapter.data.datasets import read_class_names
from vidapter.errors import ConfigError
from vidapter.models.backbones import BACKBONES, TEXT_TOWERS, WEIGHTS
from vidapter.models.layouts import detect_layout, image_layouts
from vidapter.models.pretrained import HF_ACTS, WeightsError, read_checkpoint, read_once, resolve_weights, rows_fitting
from vidapter.models.text import KINETICS_TEMPLATES, check_prompts, hf_text_config, text_facts_of, text_layout
from vidapter.models.torchscript import is_torchscript_archive
from vidapter.presets import get_preset

DEFAULT_PRESET = "clip_zero_shot"


def read_labels(labels: str | None = None, labels_file: str | os.PathLike | None = None) -> list[str]:
    """Class names from a comma-separated string or a file (one per line, UTF-8; blank lines skipped)."""
    if (labels is None) == (labels_file is None):
        raise ConfigError("give the class names with --labels a,b,c or --labels-file FILE (one of them)")
    if labels is not None:
        names = [n.strip() for n in labels.split(",")]
        if not all(names):
            raise ConfigError(f"--labels {labels!r}: an empty name between commas")
        return names
    path = Path(labels_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--labels-file {path}: not a readable UTF-8 text file ({e})") from e
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ConfigError(f"--labels-file {path}: no class names in it (one per line)")
    return names


def _file_act(path: Path) -> str | None:
    """The text tower's activation where the file says it: a Hugging Face config.json, or OpenAI's TorchScript
    releases (QuickGELU); None where only the row can say (open_clip state dicts come with either)."""
    act = hf_text_config(path)[1].get("hidden_act")
    if act:
        return HF_ACTS.get(act, act)
    if path.is_file() and is_torchscript_archive(path):
        return "quick_gelu"
    return None


def clip_row(clip: str, backbone: str | None = None, trust_pickle: bool = False) -> str:
    """The backbone row of a CLIP-style file or name: ``backbone`` when given, the published name's row, or the one
    structure with a text tower whose image and text tensors and stated activation the file fits."""
    if backbone is not None:
        text_tower_facts(backbone)
        return backbone
    if clip in WEIGHTS:
        return WEIGHTS[clip].backbone
    path = resolve_weights(clip)
    raw = read_checkpoint(path, trust_pickle=trust_pickle)
    try:
        image = image_layouts()[detect_layout(raw)](raw)
    except Exception as e:  # a file no layout reads: its own message
        raise WeightsError(f"{path}: {e}") from e
    layout = text_layout(raw)
    if layout is None:
        raise WeightsError(f"{path}: no text tower in this file: it holds an image tower alone")
    text = text_facts_of(raw, layout)
    act = _file_act(path)
    candidates = [row for row, facts in TEXT_TOWERS.items()
                  if replace(facts, heads=text.heads, act=text.act, ln_eps=text.ln_eps, mlp_hidden=text.mlp_hidden,
                             tokenizer=text.tokenizer, image_proj_bias=text.image_proj_bias,
                             image_feature=text.image_feature) == text and act in (None, facts.act)]  # fmt: skip
    fits = {row: (replace(BACKBONES[row], family=""), TEXT_TOWERS[row])
            for row in rows_fitting(image, candidates, any_grid=False)}  # fmt: skip
    distinct = set(fits.values())
    if len(distinct) == 1:  # rows of one structure (LAION and DataComp B/16): any of them builds the same model
        return next(iter(fits))
    if not fits:
        raise WeightsError(f"{path}: it fits no backbone row with a text tower ({', '.join(TEXT_TOWERS)})")
    raise ConfigError(
        f"{path}: it fits {' and '.join(fits)}, which differ in what the tensors cannot show "
        "(OpenAI's QuickGELU or open_clip's GELU): name one with --backbone"
    )


def zero_shot_config(clip: str, num_classes: int, *, backbone: str | None = None, preset: str | None = None,
                     templates: Sequence[str] | None = None, overrides: Sequence[str] = (),
                     trust_pickle: bool = False) -> Config:  # fmt: skip
    """The zero-shot model's config: the preset's (``clip_zero_shot`` by default) with ``clip``'s row and weights,
    the crop at the row's native size (the short side scaled alike), ``templates`` when given, then ``overrides``."""
    cfg = get_preset(preset or DEFAULT_PRESET)
    row = clip_row(clip, backbone, trust_pickle)
    size = BACKBONES[row].image_size
    cfg.data.test_short_side = round(cfg.data.test_short_side * size / cfg.data.size)
    cfg.data.size = size
    cfg.model = replace(cfg.model, backbone=row, pretrained=clip, num_classes=num_classes, adapters=[], head="text",
                        head_init="random", head_train=False, templates=list(templates) if templates else
                        cfg.model.templates, method="aim", head_shifts=[])  # fmt: skip
    return apply_overrides(cfg, list(overrides))


def zero_shot_model(
    clip: str | os.PathLike,
    labels: Sequence[str] | None = None,
    *,
    templates: Sequence[str] | None = None,
    backbone: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    trust_pickle: bool = False,
) -> VideoClassifier:
    """A ready-to-predict model that classifies videos into ``labels`` with ``clip``'s two towers and no training
    (None: the names of the config's ``data.class_names`` file, as ``vidapter eval --zero-shot`` reads them).

    >>> model = zero_shot_model("openai:ViT-B/16", ["juggling", "archery"])
    >>> model.predict("clip.mp4")["top"][0]["name"]
    """
    if labels is not None or templates:
        check_prompts(list(labels) if labels is not None else ["name"], list(templates or KINETICS_TEMPLATES))
    with read_once():  # a file that must say its row is read for that, then for both towers: once
        return _zero_shot_model(str(clip), labels, templates, backbone, preset, overrides, trust_pickle)


def _zero_shot_model(clip: str, labels, templates, backbone, preset, overrides, trust_pickle) -> VideoClassifier:
    cfg = zero_shot_config(clip, len(labels) if labels is not None else 1, backbone=backbone, preset=preset,
                           templates=templates, overrides=overrides, trust_pickle=trust_pickle)  # fmt: skip
    if labels is None:
        if not cfg.data.class_names:
            raise ConfigError("zero-shot evaluation needs the class names: set --data.class_names=FILE (one per line)")
        labels = read_class_names(cfg.data.class_names)
    labels = list(labels)
    cfg.model.num_classes = len(labels)
    model = build_model(cfg.model, trust_pickle=trust_pickle, class_names=labels).eval()
    model.config, model.class_names = cfg, labels
    return model

"""What ``vidapter info``, ``vidapter presets``, ``vidapter backbones`` and ``vidapter methods`` show, as data the
Python API can use too: a model's parameter counts and GFLOPs per view, one row per preset, backbone and method."""

from __future__ import annotations

import dataclasses

import torch

from vidapter.adapters.peft import count_parameters
from vidapter.adapters.registry import METHODS, get_method
from vidapter.classifier import build_model
from vidapter.config import Config
from vidapter.models.flops import count_macs
from vidapter.models.pretrained import WEIGHTS
from vidapter.models.vit import BACKBONES, list_backbones
from vidapter.presets import get_preset, list_presets

FLOPS_CONVENTION = "multiply-accumulates (fvcore/paper), torch.utils.flop_counter on meta tensors"


def model_info(cfg: Config) -> dict:
    """Parameter counts and GFLOPs per view of the model ``cfg`` describes, built on the meta device (no weights)."""
    m = dataclasses.replace(cfg.model, pretrained=None)
    method = get_method(m.method)
    with torch.device("meta"):
        model = build_model(m)
    size = model.backbone.image_size
    counts = count_parameters(model)
    macs = count_macs(model, (1, 3, m.num_frames, size, size))
    info = {
        "preset": cfg.name,
        "backbone": m.backbone,
        "pretrained": cfg.model.pretrained,
        "view": {"frames": m.num_frames, "height": size, "width": size},
        "method": m.method,
    }
    # a method with settings of its own in the info has its key in every model's info (null for the others)
    info.update({name: (other.info(m)[0] if name == m.method else None) for name, other in METHODS.items()
                 if other.info is not None})  # fmt: skip
    info.update({
        "method_settings": method.settings(m),
        "head_shifts": m.head_shifts,
        "adapters": m.adapters,
        "adapter_layers": m.adapter_layers,
        "finetune": m.finetune,
        "params": counts,
        "gflops_per_view": macs / 1e9,
        "flops_convention": FLOPS_CONVENTION,
    })  # fmt: skip
    return info


def info_lines(cfg: Config, info: dict) -> list[str]:
    """``model_info`` as the text ``vidapter info`` prints."""
    p, v, method = info["params"], info["view"], get_method(cfg.model.method)
    lines = [f"{info['preset']}: {info['backbone']} (weights: {info['pretrained'] or 'random init'})"]
    lines.append(f"method: {info['method']}" + (f": {info['method_settings']}" if info["method_settings"] else ""))
    if info["adapters"] or method.combines_aim:
        kinds = ",".join(info["adapters"]) or "none"
        lines.append(f"AIM adapters: {kinds} on layers {info['adapter_layers']}, finetune={info['finetune']}")
    if method.info is not None:
        lines.append(method.info(cfg.model)[1])
    if info["head_shifts"]:
        lines.append(f"STDHA: head offsets {info['head_shifts']} (head h reads keys and values from frame t + offset)")
    rows = [("image backbone (+ final norm)", p["backbone"]), ("adapters", p["adapters"]),
            ("temporal embedding", p["temporal_embed"]), ("head", p["head"]), ("total", p["total"]),
            ("trainable", p["trainable"])]  # fmt: skip
    lines += [f"  {name:<26}{n:>14,}  {n / 1e6:8.2f}M" for name, n in rows]
    lines.append(f"  {'trainable share':<26}{100 * p['trainable'] / p['total']:>13.1f}%")
    lines.append(f"GFLOPs per view ({v['frames']}x{v['height']}x{v['width']}): {info['gflops_per_view']:.1f}")
    lines.append(f"  ({info['flops_convention']})")
    return lines


PRESET_DATASETS = ("k400", "k700", "ssv2", "diving48", "synthetic")  # the datasets preset names name


def preset_rows() -> list[dict]:
    """One row per preset: what ``vidapter presets`` prints (counts and GFLOPs from a meta-device build)."""
    rows = []
    for name in list_presets():
        cfg = get_preset(name)
        info = model_info(cfg)
        dataset = next((t for t in name.split("_") if t in PRESET_DATASETS), "-")  # "-": the user's (zero-shot)
        rows.append({"name": name, "backbone": info["backbone"], "dataset": dataset,
                     "frames": info["view"]["frames"], "classes": cfg.model.num_classes,
                     "trainable": info["params"]["trainable"], "gflops_per_view": info["gflops_per_view"]})  # fmt: skip
    return rows


def backbone_rows() -> list[dict]:
    """One row per backbone: its facts and the published weight names that load into it."""
    rows = []
    for name in list_backbones():
        f = BACKBONES[name]
        weights = [w for w, spec in WEIGHTS.items() if spec.backbone == name]
        rows.append({"name": name, "family": f.family, "width": f.width, "depth": f.depth, "heads": f.heads,
                     "patch": f.patch_size, "image_size": f.image_size, "activation": f.act, "tokens": _tokens(f),
                     "feature": f.feature, "licence": f.licence, "layout": f.layout, "weights": weights})  # fmt: skip
    return rows


def method_rows() -> list[dict]:
    """One row per registered method: its paper, what trains, whether it merges, its official checkpoint kinds."""
    return [{"name": m.name, "paper": m.paper, "trains": m.trains, "merges": m.merge is not None,
             "combines_aim": m.combines_aim, "official": [o.kind for o in m.official]}
            for m in METHODS.values()]  # fmt: skip


def _tokens(f) -> str:
    """What a frame's token sequence holds and how positions enter, in a few words."""
    parts = ["cls"] if f.class_token else []
    parts += [f"{f.registers} reg"] if f.registers else []
    parts += ["patches"]
    pos = {"cls": "abs", "patches": "abs", "none": ""}[f.pos_embed]
    pos = "+".join(p for p in (pos, "rope" if f.rope else "") if p)
    return "+".join(parts) + f" ({pos})" + (" ls" if f.layer_scale else "")

"""Trainable sets, parameter counts and the identity of frozen backbone weights.

A trainable set is declared, not matched by substrings: every module that owns trained tensors names them
(``trainable_params()``, the contract of ``registry.AdapterModule``): the adapters and LoRA updates inside the image
blocks, a decoder (EVL), the head (its Linear, or a text head's temperature and class embeddings) and the classifier
itself for its temporal embedding and, where the method trains it, the image model's final norm. One walk over the
modules gives the set; the counts, the adapter export and the digest of the frozen image weights read it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from vidapter.errors import ConfigError
from vidapter.files import write_atomic
from vidapter.models.pretrained import WeightsError, check_keys

FINETUNE_MODES = ("adapters", "full")


def declared_parameters(model: nn.Module) -> dict[str, str]:
    """Every parameter a module of ``model`` declares trainable (``trainable_params()``), as {full name: the
    declaring module's name} ("" for ``model`` itself), in module order; a declared name that is not a parameter
    of its module raises naming both."""
    declared = {}
    for prefix, module in model.named_modules():
        declare = getattr(module, "trainable_params", None)
        if not callable(declare):
            continue
        own = dict(module.named_parameters())
        for name in declare():
            if name not in own:
                raise ValueError(f"{type(module).__name__} {prefix or '(the model)'} declares {name!r} trainable, "
                                 "but has no parameter of that name")  # fmt: skip
            declared.setdefault(f"{prefix}.{name}" if prefix else name, prefix)
    return declared


def adapter_parameter_names(model: nn.Module) -> list[str]:
    """The tensors the method adds to the image model (adapters, LoRA updates, a decoder): declared by modules
    inside ``model`` other than its head, in module order."""
    return [name for name, owner in declared_parameters(model).items()
            if owner and owner != "head" and not owner.startswith("head.")]  # fmt: skip


def peft_parameter_names(model: nn.Module) -> list[str]:
    """The method's trainable set: what the modules declare (adapters, temporal embedding, final norm where
    trained, head)."""
    return list(declared_parameters(model))


def set_trainable(model: nn.Module, finetune: str) -> list[str]:
    """Freeze everything, then unfreeze the set for ``finetune`` ("adapters": AIM's set, "full": all). Returns names."""
    if finetune not in FINETUNE_MODES:
        raise ConfigError(f"finetune must be one of {FINETUNE_MODES}, got {finetune!r}")
    params = dict(model.named_parameters())
    chosen = list(params) if finetune == "full" else peft_parameter_names(model)
    for p in params.values():
        p.requires_grad_(False)
    for n in chosen:
        params[n].requires_grad_(True)
    return chosen


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total and trainable counts, with the parts: image backbone, adapters, temporal embedding, head."""
    params = dict(model.named_parameters())
    adapters = set(adapter_parameter_names(model))
    te = model.temporal_embed.numel() if model.temporal_embed is not None else 0
    head = sum(p.numel() for p in model.head.parameters())
    total = sum(p.numel() for p in params.values())
    return {
        "total": total,
        "trainable": sum(p.numel() for p in params.values() if p.requires_grad),
        "backbone": sum(p.numel() for n, p in params.items() if n.startswith("backbone.") and n not in adapters),
        "adapters": sum(params[n].numel() for n in adapters),
        "temporal_embed": te,
        "head": head,
    }


def image_weight_names(model: nn.Module) -> list[str]:
    """Backbone parameters that came from the image model and stay frozen under the method: all that no module
    declares trainable (not the adapters, not the final norm where the method trains it)."""
    declared = declared_parameters(model)
    return [n for n, _ in model.named_parameters() if n.startswith("backbone.") and n not in declared]


@torch.no_grad()
def store_frozen_matrices_(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Store the frozen weights and biases of Linear and Conv2d layers in ``dtype``, in place; returns the tensors they
    replaced, by name (for ``restore_frozen_``).

    Exact under autocast to the same ``dtype``: autocast casts exactly these tensors to it (round to nearest) at every
    use, so storing them cast gives the same products, bit for bit, and saves the difference in bytes at any batch
    (162 MiB for ViT-B/16 in bf16). Norms, embeddings and everything that trains keep their dtype.
    """
    replaced = {}
    for mod_name, mod in model.named_modules():
        if isinstance(mod, nn.Linear | nn.Conv2d):
            for p_name, p in mod.named_parameters(recurse=False):
                if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
                    replaced[f"{mod_name}.{p_name}" if mod_name else p_name] = p.data
                    p.data = p.data.to(dtype)
    return replaced


@torch.no_grad()
def restore_frozen_(model: nn.Module, replaced: dict[str, torch.Tensor]) -> None:
    """Undo ``store_frozen_matrices_``: the original tensors back in place, on the parameters' device."""
    params = dict(model.named_parameters())
    for name, original in replaced.items():
        params[name].data = original.to(params[name].device)


@torch.no_grad()
def backbone_digest(model: nn.Module) -> str:
    """sha256 over the frozen image weights (names and fp32 bytes): the identity adapters are trained against."""
    params = dict(model.named_parameters())
    h = hashlib.sha256()
    for n in sorted(image_weight_names(model)):
        h.update(n.encode())
        h.update(params[n].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that training changes (``requires_grad``), detached."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


# 2: the embedded config carries its schema version; 1 (no "version" key): vidapter 0.2. Tensor names are the same.
ADAPTERS_VERSION = 2


def export_adapters(model: nn.Module, path: str | os.PathLike, *, backbone: str, config: dict | None = None) -> Path:
    """Write the trainable tensors alone (a few MB) with the backbone's name and weight digest as metadata.

    Refused for a model whose image weights train too (full fine-tuning): save the whole model instead.
    """
    params = dict(model.named_parameters())
    trained_image = [n for n in image_weight_names(model) if params[n].requires_grad]
    if trained_image:
        raise ConfigError(
            f"the image weights are trainable ({trained_image[0]}, ...): an adapter-only export would lose them; "
            "use save_pretrained for a fully fine-tuned model"
        )
    meta = {
        "format": "vidapter-adapters",
        "version": str(ADAPTERS_VERSION),
        "backbone": backbone,
        "backbone_sha256": backbone_digest(model),
        "config": json.dumps(config or {}),
    }
    tensors = {k: v.contiguous() for k, v in trainable_state_dict(model).items()}
    path = Path(path)
    write_atomic(path, lambda f: f.write(safetensors_bytes(tensors, metadata=meta)))
    return path


def load_adapters(model: nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load an adapter-only export onto ``model``; refused when the backbone weights differ from those it was trained
    on, or when its tensors are not exactly the model's trainable set. Returns the file's metadata."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e
    if meta.get("format") != "vidapter-adapters":
        raise WeightsError(f"{path}: not a vidapter adapter export (format {meta.get('format')!r})")
    version = meta.get("version", "1")
    if not version.isdigit() or int(version) > ADAPTERS_VERSION:
        raise WeightsError(f"{path}: written by a newer vidapter (adapter export version {version!r}; this one reads "
                           f"up to {ADAPTERS_VERSION}): upgrade vidapter to read it")  # fmt: skip
    digest = backbone_digest(model)
    if meta.get("backbone_sha256") != digest:
        raise WeightsError(
            f"{path}: these adapters were trained on backbone {meta.get('backbone')!r} with weights sha256 "
            f"{meta.get('backbone_sha256', '?')[:12]}..., but this model's frozen weights are {digest[:12]}...; "
            "load the same pretrained backbone first"
        )
    check_keys(tensors, trainable_state_dict(model), f"{path} does not fit this model's trainable set")
    model.load_state_dict(tensors, strict=False)
    return meta

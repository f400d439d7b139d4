"""vidapter: turn a pretrained image model into a video action-recognition model by training small adapters.

The public API, importable from the package root::

    import vidapter

    cfg = vidapter.get_preset("k400_vitb16_8f")        # a named recipe (vidapter.list_presets())
    model = vidapter.build_model(cfg.model)             # image ViT + weights + adapters (vidapter.list_backbones())
    vidapter.fit(cfg)                                   # train; the run directory holds model/
    clf = vidapter.VideoClassifier.from_pretrained("runs/k400_vitb16_8f/model")
    clf.predict("clip.mp4", top_k=5)

Names load on first use, so ``import vidapter`` imports neither PyTorch nor a video library.
"""

from __future__ import annotations

import importlib

from vidapter.version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS = {
    "Config": "vidapter.config",
    "VideoClassifier": "vidapter.classifier",
    "build_model": "vidapter.classifier",
    "save_pretrained": "vidapter.classifier",
    "from_pretrained": "vidapter.classifier",
    "load_model": "vidapter.classifier",
    "export_adapters": "vidapter.adapters.peft",
    "load_adapters": "vidapter.adapters.peft",
    "get_preset": "vidapter.presets",
    "list_presets": "vidapter.presets",
    "list_backbones": "vidapter.models.vit",
    "fit": "vidapter.engine",
    "evaluate": "vidapter.evaluation",
    "Method": "vidapter.adapters.registry",
    "AdapterModule": "vidapter.adapters.registry",
    "register_method": "vidapter.adapters.registry",
    "model_info": "vidapter.summary",
    "extract_features": "vidapter.features",
    "export_onnx": "vidapter.export",
    "export_torch": "vidapter.export",
    "zero_shot_model": "vidapter.zeroshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        if name == "Config":
            importlib.import_module("vidapter.adapters")  # the methods register their sections of Config's model
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'vidapter' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

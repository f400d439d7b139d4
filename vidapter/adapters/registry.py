"""The method registry: every way vidapter adapts an image model to video, each declared in its own module.

A method module (aim.py, lora.py, zeroi2v.py, st_adapter.py, evl.py) ends with ``register_method(Method(...))``; the
model builder, ``vidapter info``, ``vidapter methods``, ``vidapter convert``, ``vidapter export --merge`` and the demo
read this registry and know no method by name. A module of your own registers a method the same way
(``vidapter.register_method``; README, "Your own method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from vidapter.config import register_model_section
from vidapter.errors import ConfigError

if TYPE_CHECKING:
    from vidapter.config import ModelConfig
    from vidapter.models.vit import VisionTransformer

READOUTS = ("norm_mean", "mean_norm", "decoder")


class AdapterModule:
    """The contract of a module that owns tensors a method trains: ``trainable_params()`` names them, relative to
    the module (as torchtune's adapter modules' ``adapter_params``). The trainable set, the parameter counts, the
    adapter export and the digest of the frozen image weights all come from one walk over the modules that declare
    (``vidapter.adapters.peft``); nothing else is trained. This mixin declares every parameter of the module: an
    adapter, a LoRA update or a decoder is new and trains whole. A module that trains only some of its tensors
    defines ``trainable_params`` itself."""

    def trainable_params(self) -> list[str]:
        return [n for n, _ in self.named_parameters()]


@dataclass(frozen=True)
class Official:
    """A released checkpoint of the method's official code that ``vidapter convert KIND`` reads.

    ``convert(raw) -> state dict`` in vidapter's names; ``layout``: what ``models.layouts.detect_layout`` calls such a
    file (checked when ``whole``); ``whole``: the file holds the image weights too (else only the trained tensors,
    which sit on the image weights named by ``--backbone``); ``shape(model_cfg, state_dict)`` sets what the file
    fixes about the model (classes, frames, the method's sizes) on a copy of the preset's config."""

    kind: str
    layout: str
    convert: Callable[[dict], dict]
    whole: bool
    shape: Callable[[ModelConfig, dict], None]


@dataclass(frozen=True)
class Method:
    """One adaptation method.

    ``adapt(vit, cfg, layers)`` adapts the image ViT in place (``layers``: the blocks ``model.adapter_layers``
    chooses, for a ``per_layer`` method) and returns the readout module a ``decoder`` readout needs (else None).
    ``readout``: how the classifier reads the video out of the blocks (``classifier.VideoClassifier``).
    ``temporal_embed(cfg)``: whether the model has a temporal embedding when ``model.temporal_embed`` is None.
    ``train_norm``: the final norm trains. ``head_std``: head weights ~ N(0, std^2), None: PyTorch's default.
    ``combines_aim``: AIM's adapters of ``model.adapters`` may sit beside it. ``per_layer``: it honours
    ``model.adapter_layers`` (else a value other than "all" is refused naming the field). ``merge(model) -> int``:
    folds its modules into the frozen weights (how many were folded); None: it does not merge. ``settings(cfg)``:
    its own sizes in one line, for ``vidapter info``; ``info(cfg) -> (dict, line)``: its settings under its name
    in ``vidapter info --json`` (a method that gives them has the key in every model's info: null for other
    methods) and as a line of their own in the text. ``official``: the released checkpoints it converts.
    ``config``: the dataclass of its own settings, the config section ``model.<name>`` (``--model.<name>.x=...``);
    its defaults are the method's, its ``__post_init__`` refuses values the method cannot build.
    ``identity_at_init``: the adapted image blocks compute the image model's function until training moves the
    method's tensors (the contract tests check it). ``head(cfg, width, class_names, trust_pickle)``: the method's
    own head (ViFi-CLIP's text tower), in place of the linear or text head of ``model.head``."""

    name: str
    paper: str
    trains: str
    adapt: Callable[[VisionTransformer, ModelConfig, list[int]], nn.Module | None]
    readout: str = "norm_mean"
    temporal_embed: Callable[[ModelConfig], bool] = lambda cfg: True
    train_norm: bool = True
    head_std: float | None = 0.01
    combines_aim: bool = False
    per_layer: bool = True
    merge: Callable[[nn.Module], int] | None = None
    settings: Callable[[ModelConfig], str] = lambda cfg: ""
    official: tuple[Official, ...] = ()
    info: Callable[[ModelConfig], tuple[dict, str]] | None = None
    config: type | None = None
    identity_at_init: bool = False
    head: Callable[[ModelConfig, int, list[str] | None, bool], nn.Module] | None = None

    def __post_init__(self):
        if self.readout not in READOUTS:
            raise ValueError(f"method {self.name!r}: readout must be one of {READOUTS}, got {self.readout!r}")


METHODS: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry under ``method.name`` (``replace=True`` to redefine one); returns it."""
    if method.name in METHODS and not replace:
        raise ValueError(f"a method named {method.name!r} is registered already (replace=True redefines it)")
    taken = {o.kind for m in METHODS.values() if m.name != method.name for o in m.official}
    clash = sorted(taken & {o.kind for o in method.official})
    if clash:
        raise ValueError(f"method {method.name!r}: official checkpoint kind {clash[0]!r} is another method's")
    if method.config is not None:
        register_model_section(method.name, method.config, replace=replace)
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``; a ConfigError naming ``model.method`` and the choices otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"model.method must be one of {', '.join(METHODS)}, got {name!r}") from None


def mergeable() -> list[str]:
    return [name for name, m in METHODS.items() if m.merge is not None]


def official_kinds() -> dict[str, tuple[Method, Official]]:
    """Every released-checkpoint kind ``vidapter convert`` reads, with its method."""
    return {o.kind: (m, o) for m in METHODS.values() for o in m.official}

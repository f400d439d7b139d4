"""ViFi-CLIP (Rasheed et al., "Fine-tuned CLIP Models are Efficient Video Learners", CVPR 2023): CLIP fine-tuned on
video with no new module. Every frame goes through the image tower and its projection; the video embedding is the
mean over the frames of those unnormalised embeddings, normalised once; the class embeddings come from the text tower
at every forward (single prompt ``"a photo of a {}."``, the configs' ``CTX_INIT``); logits = exp(logit_scale) x
cosine, the loss a cross-entropy on them (muzairkhattak/ViFi-CLIP ``trainers/vificlip.py``).

``model.vifi.train`` chooses what trains (``TRAINER.ViFi_CLIP.USE``): ``both`` (ViFi-CLIP) the whole image tower,
the text tower and the logit scale; ``image`` (CLIP image-FT) the image tower with its projection; ``text`` (CLIP
text-FT) the text tower. The token embedding never trains: the official model computes the prompts' token
embeddings once and keeps no embedding table. Converted released checkpoints (``vidapter convert vifi-official``)
give its official model's logits (tests/adapters/test_vifi.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidapter.adapters.registry import AdapterModule, Method, Official, register_method
from vidapter.config import ModelConfig
from vidapter.errors import ConfigError
from vidapter.models.backbones import TEXT_TOWERS
from vidapter.models.convert import OPENAI, ConversionError, convert
from vidapter.models.text import OPENAI_TEXT, ClipText, check_prompts, load_clip_text
from vidapter.models.tokenizer import tokenizer
from vidapter.models.vit import VisionTransformer

TRAIN_MODES = ("both", "image", "text")
PROMPT = "a photo of a {}."  # CTX_INIT "a photo of a" + " " + name + "."


@dataclass
class ViFiConfig:
    train: str = "both"  # both (ViFi-CLIP) | image (CLIP image-FT) | text (CLIP text-FT)

    def __post_init__(self):
        if self.train not in TRAIN_MODES:
            raise ConfigError(f"model.vifi.train must be one of {', '.join(TRAIN_MODES)}, got {self.train!r}")


class TunedViT(AdapterModule, VisionTransformer):
    """The image tower, every tensor of it trained (``both`` and ``image``)."""


class TextTowerHead(nn.Module):
    """The class embeddings computed by the text tower at every forward, from the prompts' token ids (a buffer of
    (C, K, context): K templates per class, their normalised embeddings averaged and normalised again; K = 1 is
    ViFi-CLIP's single prompt). Logits = exp(logit_scale) x cos(x @ image_proj, classes)."""

    def __init__(self, clip: ClipText, num_classes: int, train: str, templates: int = 1):
        super().__init__()
        self.clip = clip
        self.train_mode = train
        self.register_buffer("ids", torch.zeros(num_classes, templates, clip.text.facts.context, dtype=torch.long))

    def trainable_params(self) -> list[str]:
        text = [f"clip.{n}" for n, _ in self.clip.named_parameters()
                if n.startswith("text.") and n != "text.token_embedding.weight"]  # fmt: skip
        return {"both": [*text, "clip.image_proj", "clip.logit_scale"], "image": ["clip.image_proj"],
                "text": text}[self.train_mode]  # fmt: skip

    @property
    def num_classes(self) -> int:
        return self.ids.shape[0]

    def set_names(self, names: list[str], templates: list[str] | tuple[str, ...] | None = None) -> None:
        """Tokenize the prompts of ``names`` (CLIP's BPE, the text tower's context) into the ``ids`` buffer;
        ``templates`` default to ViFi-CLIP's one prompt."""
        templates = templates or [PROMPT]
        check_prompts(names, templates)
        ctx = self.clip.text.facts.context
        ids = torch.stack([tokenizer()([t.format(n) for t in templates], context=ctx) for n in names])
        self.ids = ids.to(self.ids.device)

    def class_embeddings(self) -> torch.Tensor:
        c, k, _ = self.ids.shape
        text = F.normalize(self.clip.encode_text(self.ids.flatten(0, 1)), dim=-1).view(c, k, -1)
        return F.normalize(text.mean(1), dim=-1)

    def _cached_class_embeddings(self) -> torch.Tensor:
        """Without gradient the class embeddings are computed once and kept until the text tower's tensors, the
        ids or the autocast state change (tensor versions count every in-place update: optimizer steps, loading)."""
        cached = getattr(self, "_cache", None)
        if type(self.ids) is not torch.Tensor:  # traced (torch.export): the last call's embeddings, as constants
            return cached[1] if cached is not None else self.class_embeddings()
        device = self.ids.device.type
        autocast = device in ("cpu", "cuda") and torch.is_autocast_enabled(device)
        key = (tuple(p._version for p in self.clip.text.parameters()), self.ids.data_ptr(), self.ids._version,
               device, autocast)  # fmt: skip
        if cached is None or cached[0] != key:
            self._cache = (key, self.class_embeddings())
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        video = F.normalize(self.clip.encode_image_features(x), dim=-1)
        grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.clip.text.parameters())
        classes = self.class_embeddings() if grad else self._cached_class_embeddings()
        return self.clip.logit_scale.exp() * video @ classes.to(video.dtype).T


def adapt(vit: VisionTransformer, cfg: ModelConfig, layers: list[int]) -> None:
    if cfg.vifi.train in ("both", "image"):
        vit.__class__ = TunedViT  # in place (the classifier holds this module): the same tensors, all declared


def build_head(cfg: ModelConfig, width: int, class_names: list[str] | None, trust_pickle: bool) -> TextTowerHead:
    """The text tower of ``model.pretrained`` (the backbone row's) with the class names' prompts (``model.templates``,
    else ViFi-CLIP's). Without ``model.pretrained`` (a saved model being rebuilt) a random tower for its state dict."""
    if cfg.backbone not in TEXT_TOWERS:
        raise ConfigError(f"model.method=vifi needs a backbone with a text tower; {cfg.backbone!r} has none (rows "
                          f"with one: {', '.join(TEXT_TOWERS)})")  # fmt: skip
    if cfg.head != "linear" or cfg.head_init != "random":
        raise ConfigError("model.method=vifi has its own text head: model.head and model.head_init do not apply")
    templates = cfg.templates or [PROMPT]
    if cfg.pretrained is None:
        clip = ClipText(TEXT_TOWERS[cfg.backbone], width)
        return TextTowerHead(clip, cfg.num_classes, cfg.vifi.train, len(templates))
    if class_names is None or len(class_names) != cfg.num_classes:
        got = "none" if class_names is None else len(class_names)
        raise ConfigError(f"model.method=vifi needs the {cfg.num_classes} class names (data.class_names), got {got}")
    head = TextTowerHead(load_clip_text(cfg.pretrained, cfg.backbone, trust_pickle=trust_pickle), cfg.num_classes,
                         cfg.vifi.train, len(templates))  # fmt: skip
    head.set_names(class_names, templates)
    return head


# Released checkpoints (``{"model": state_dict, ...}``, DDP's ``module.`` prefix): the image tower as OpenAI's
# ``visual.*``, the text tower without its token embedding, and the prompts' token embeddings, which the official
# loader drops (tools.load_checkpoint) and vidapter recomputes from the class names.
_VIFI_IMAGE = [(r"image_encoder\." + p, f"backbone.{t}", fn) for p, t, fn in OPENAI]
_VIFI_TEXT = [(r"text_encoder\." + p, f"head.clip.{t}", fn) for p, t, fn in OPENAI_TEXT
              if p.startswith((r"positional_embedding", r"transformer", r"ln_final", r"text_projection"))]  # fmt: skip
VIFI_OFFICIAL = [*_VIFI_IMAGE, *_VIFI_TEXT, (r"image_encoder\.proj", "head.clip.image_proj", None),
                 (r"logit_scale", "head.clip.logit_scale", None)]  # fmt: skip
VIFI_OFFICIAL_IGNORE = [r"prompt_learner\.(complete_text_embeddings|token_prefix|token_suffix)"]


def vifi_official_to_vidapter(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = {k.removeprefix("module."): v for k, v in raw.items()}
    if not any(k.startswith("text_encoder.") for k in sd):
        raise ConversionError("vifi-official: no text_encoder.* keys (not a ViFi-CLIP checkpoint)")
    return convert(sd, VIFI_OFFICIAL, VIFI_OFFICIAL_IGNORE, "vifi-official")


def _shape(cfg: ModelConfig, sd: dict) -> None:
    """A released file fixes the image tower and the text tower; the classes come from the names given."""


VIFI = register_method(Method(
    name="vifi",
    paper="ViFi-CLIP (Rasheed et al., CVPR 2023)",
    trains="both towers and the logit scale (or the image tower, or the text tower), not the token embedding",
    adapt=adapt,
    temporal_embed=lambda cfg: False,
    train_norm=False,  # the tuned image tower declares its norms with everything else
    head_std=None,
    per_layer=False,
    settings=lambda cfg: f"train {cfg.vifi.train}",
    config=ViFiConfig,
    identity_at_init=True,
    head=build_head,
    official=(Official("vifi-official", "vifi_official", vifi_official_to_vidapter, whole=False, shape=_shape),),
))  # fmt: skip

"""The video classifier users hold: its network, how it is built from a config, saved, loaded and run on files.

Network as in AIM (arXiv 2302.03024) and its reference code (docs/model.md): a temporal embedding (zeros,
(1, T, D)) is added once to every token after the positional embedding and before the pre-norm; the head is mean over
T -> Dropout(0.5) -> Linear(D, K) with weight ~ N(0, 0.01), bias 0.

``build_model`` makes one from a ``ModelConfig`` (image ViT, pretrained weights, adapters, trainable set);
``save_pretrained`` / ``from_pretrained`` write and read model directories (config.json + model.safetensors +
classes.txt); ``load_model`` also reads run directories and training checkpoints; ``predict_file`` classifies a video
file. This module sits above models/ and adapters/ (it composes them) and below the engine and the command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidapter.adapters.aim import (
    ADAPTER_KINDS,
    AIM,
    apply_aim,
    check_temporal_attention,
    resolve_layers,
    set_temporal_attention,
)
from vidapter.adapters.evl import tapped_forward
from vidapter.adapters.peft import backbone_digest, set_trainable, trainable_state_dict
from vidapter.adapters.registry import READOUTS, get_method, mergeable
from vidapter.adapters.stdha import apply_stdha
from vidapter.checkpoint import CheckpointError, load_checkpoint
from vidapter.config import Config, ConfigError, ModelConfig, from_dict, to_dict
from vidapter.data.build import clip_transform, frame_sampler
from vidapter.data.datasets import read_class_names
from vidapter.files import write_atomic, write_dir_atomic, write_text
from vidapter.models.backbones import TEXT_TOWERS
from vidapter.models.pretrained import (
    LoadReport,
    WeightsError,
    check_keys,
    load_backbone,
    read_json,
    read_once,
    read_safetensors,
)
from vidapter.models.text import KINETICS_TEMPLATES, TextHead, class_embeddings, load_clip_text
from vidapter.models.vit import VisionTransformer, build_vit, set_recompute


class LinearHead(nn.Module):
    """Dropout, then a Linear from the video feature to the logits; its weights ~ N(0, std^2) with bias 0 (None:
    PyTorch's default init)."""

    def __init__(self, width: int, num_classes: int, dropout: float = 0.5, std: float | None = 0.01):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        if std is not None:
            nn.init.normal_(self.fc.weight, std=std)
            nn.init.zeros_(self.fc.bias)

    def trainable_params(self) -> list[str]:
        return ["fc.weight", "fc.bias"]

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


class VideoClassifier(nn.Module):
    """Image backbone applied to video. Input (B, 3, T, H, W) normalised float video; output logits (B, K).

    ``readout``: ``norm_mean`` (AIM, ZeroI2V, LoRA) puts every frame's class token through the final norm, then takes
    the mean over T; ``mean_norm`` (ST-Adapter) takes the mean first; ``decoder`` (EVL) runs the backbone without
    gradient while its weights are frozen and hands the last blocks to ``decoder``, whose output the head reads.
    ``head_std``: the head's weights ~ N(0, head_std^2), bias 0; None: PyTorch's default init of a Linear.
    ``feature``: what each frame gives (``VisionTransformer.pool``): its class token ("cls"), the backbone's
    pretrained pooling head ("pool", SigLIP's and PE's) or the mean of its patch tokens ("mean"); None: the
    backbone row's own. With ``mean_norm`` and a feature other than "cls" the frames' features are averaged.
    """

    def __init__(
        self,
        backbone: VisionTransformer,
        num_classes: int,
        num_frames: int,
        *,
        temporal_embed: bool = True,
        dropout: float = 0.5,
        grad_checkpointing: bool = False,
        readout: str = "norm_mean",
        decoder: nn.Module | None = None,
        head_std: float | None = 0.01,
        feature: str | None = None,
        head: nn.Module | None = None,
    ):
        super().__init__()
        if num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        if readout not in READOUTS or (readout == "decoder") != (decoder is not None):
            raise ValueError(f"readout must be one of {READOUTS}, 'decoder' exactly when a decoder is given")
        self.backbone = backbone
        self.readout = readout
        self.feature = feature or backbone.facts.feature
        if decoder is not None and list(decoder.parameters()) and not hasattr(decoder, "trainable_params"):
            raise ValueError(f"decoder {type(decoder).__name__} does not say which of its parameters train: define "
                             "trainable_params() (vidapter.AdapterModule declares them all)")  # fmt: skip
        self.decoder = decoder
        self.train_norm = True  # the method's (build_model sets it)
        self.num_frames = num_frames
        self.grad_checkpointing = grad_checkpointing
        d = backbone.width
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, d)) if temporal_embed else None
        self.head = head if head is not None else LinearHead(d, num_classes, dropout, head_std)
        self.load_report = None  # what build_model loaded the image weights from (None: random init)
        self.config: Config | None = None  # set by the loaders (from_pretrained, load_model); predict needs it
        self.class_names: list[str] | None = None

    def trainable_params(self) -> list[str]:
        """The classifier's own trained tensors (the adapters and the head declare theirs): the temporal embedding and
        the image model's final norm where the method trains it (``train_norm``)."""
        names = ["temporal_embed"] if self.temporal_embed is not None else []
        if self.train_norm:
            names += [f"backbone.norm.{p}" for p, _ in self.backbone.norm.named_parameters()]
        return names  # the head declares its own

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def check_input(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected video of shape (B, 3, T, H, W), got {tuple(video.shape)}")
        if video.shape[2] != self.num_frames:
            raise ValueError(
                f"model was built for T={self.num_frames} frames, got {video.shape[2]}; sample {self.num_frames} "
                "frames, or call set_num_frames(T) to interpolate the temporal embedding"
            )

    def _tokens(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B*T, N, D): embedded frames, temporal embedding added, pre-normed."""
        self.check_input(video)
        t = video.shape[2]
        x = self.backbone.embed(rearrange(video, "b c t h w -> (b t) c h w"))
        if self.temporal_embed is not None:
            x = rearrange(x, "(b t) n d -> b t n d", t=t) + self.temporal_embed.to(x.dtype).unsqueeze(2)
            x = rearrange(x, "b t n d -> (b t) n d")
        return self.backbone.norm_pre(x)

    def _blocks(self, x: torch.Tensor, t: int) -> torch.Tensor:
        for blk in self.backbone.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, t, use_reentrant=False)
            else:
                x = blk(x, t)
        return x

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, T, D): every frame's feature after the final norm (``feature``; readouts other
        than ``decoder``)."""
        if self.decoder is not None:
            raise ValueError("a model with a decoder readout (EVL) has no per-frame features")
        b, t = video.shape[0], video.shape[2]
        x = self._blocks(self._tokens(video), t)
        return rearrange(self.backbone.pool(x, self.feature), "(b t) d -> b t d", b=b)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, K) logits."""
        return self.head(self.embed(video))

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, D): the video embedding the head reads (the readout's output)."""
        if self.readout == "norm_mean" or (self.readout == "mean_norm" and self.feature != "cls"):
            x = self.forward_features(video).mean(dim=1)
        elif self.readout == "mean_norm":
            b, t = video.shape[0], video.shape[2]
            x = self._blocks(self._tokens(video), t)
            x = self.backbone.norm(rearrange(x[:, 0], "(b t) d -> b t d", b=b).mean(dim=1))
        else:
            # a frozen backbone runs without gradient: nothing of it is kept for backward
            frozen = not any(p.requires_grad for p in self.backbone.parameters())
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                taps = tapped_forward(self.backbone, self._tokens(video), video.shape[2], self.decoder.num_layers)
            x = self.decoder(taps)
        return x

    def block_output(self, video: torch.Tensor, block: int) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, T, N, D): the tokens of every frame after backbone block ``block`` (0-based)."""
        if not 0 <= block < len(self.backbone.blocks):
            raise ConfigError(f"block {block}: the backbone has blocks 0 to {len(self.backbone.blocks) - 1}")
        b, t = video.shape[0], video.shape[2]
        x = self._tokens(video)
        for blk in self.backbone.blocks[: block + 1]:
            x = blk(x, t)
        return rearrange(x, "(b t) n d -> b t n d", b=b)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, trust_pickle: bool = False) -> VideoClassifier:
        """Load a model directory, a run directory or a training checkpoint, ready for ``predict``
        (``trust_pickle``: see ``load_model``)."""
        return load_model(path, trust_pickle)[0]

    def predict(self, path: str | os.PathLike, top_k: int = 5, window: float | None = None, amp=None) -> dict:
        """Classify one video file under the test view protocol: {"file", "frames", "top": [{label, name, prob}]}
        (with ``window``, seconds: one such result per window, under "windows"). Raises VideoError for an unreadable
        file."""
        if self.config is None:
            raise ConfigError("predict needs the model's config: load it with VideoClassifier.from_pretrained(path)")
        device = next(self.parameters()).device
        return predict_file(self, self.config, path, names=self.class_names, top_k=top_k, window=window,
                            device=device, amp=amp)  # fmt: skip

    def set_class_names(self, names: list[str], templates: list[str] | None = None, clip=None,
                        trust_pickle: bool = False) -> None:  # fmt: skip
        """Classify into ``names`` from now on: a model with a text head (``model.head=text``, the zero-shot models)
        embeds them with the text tower of ``clip`` (a path, a published name or a loaded ``ClipText``; default: the
        model's ``model.pretrained``) and ``templates`` (default: the model's ``model.templates``, else CLIP's 28
        Kinetics prompts). Trained class embeddings are replaced by the new names'."""
        cfg = self.config.model if self.config is not None else None
        if hasattr(self.head, "set_names"):  # a method's head with its own text tower
            self.head.set_names(list(names), templates or (cfg.templates if cfg is not None else None))
            self._named(names)
            return
        if not isinstance(self.head, TextHead):
            raise ConfigError("set_class_names needs a text head (model.head=text): a linear head's classes are fixed")
        clip = clip if clip is not None else (cfg.pretrained if cfg is not None else None)
        if clip is None:
            raise ConfigError("set_class_names needs the CLIP file this model was built from: pass clip=PATH_OR_NAME")
        if isinstance(clip, str | os.PathLike):
            clip = load_clip_text(clip, text_tower_facts(self.backbone.name), trust_pickle=trust_pickle)
        templates = templates or (cfg.templates if cfg is not None else None) or KINETICS_TEMPLATES
        device = self.head.proj.device
        self.head.set_classes(clip, class_embeddings(clip.to(device).eval(), list(names), templates))
        self._named(names)

    def _named(self, names: list[str]) -> None:
        self.class_names = list(names)
        if self.config is not None:
            self.config.model.num_classes = len(names)

    @torch.no_grad()
    def set_num_frames(self, num_frames: int) -> None:
        """Change T, linearly interpolating the temporal embedding (a documented choice, not in the paper)."""
        if self.temporal_embed is not None and num_frames != self.num_frames:
            te = self.temporal_embed.detach().transpose(1, 2)  # (1, D, T)
            te = F.interpolate(te.float(), size=num_frames, mode="linear", align_corners=False)
            old = self.temporal_embed
            self.temporal_embed = nn.Parameter(te.transpose(1, 2).to(old.dtype), requires_grad=old.requires_grad)
        self.num_frames = num_frames


# Table 1 rows as adapter sets; anything else must be a subset of ADAPTER_KINDS (joint without temporal is allowed).
ABLATION_ROWS = {
    "frozen space-only": ([], "adapters"),
    "fine-tuned space-only": ([], "full"),
    "spatial adaptation": (["spatial"], "adapters"),
    "+ temporal adaptation": (["spatial", "temporal"], "adapters"),
    "+ joint adaptation (AIM)": (["spatial", "temporal", "joint"], "adapters"),
    "full fine-tuning of AIM": (["spatial", "temporal", "joint"], "full"),
}


def build_model(cfg: ModelConfig, trust_pickle: bool = False, class_names: list[str] | None = None) -> VideoClassifier:
    """Build the image ViT, load its pretrained weights (if named), add AIM's adapters of ``model.adapters`` where the
    method combines with them, adapt it with ``model.method`` (the registry's ``Method.adapt``), set the time shifts,
    the head and the trainable set.

    ``class_names``: what a text head (``model.head=text`` or ``model.head_init=text``) embeds with the text tower of
    ``model.pretrained``. The load report is kept as ``model.load_report`` (None for a random backbone).
    """
    method = get_method(cfg.method)
    unknown = sorted(set(cfg.adapters) - set(ADAPTER_KINDS))
    if unknown:
        raise ConfigError(f"model.adapters: unknown kinds {unknown}; allowed: {list(ADAPTER_KINDS)}")
    if cfg.adapters and not method.combines_aim:
        raise ConfigError(f"model.method={cfg.method} replaces AIM's adapters: set --model.adapters= (empty), got "
                          f"{cfg.adapters}")  # fmt: skip
    check_temporal_attention(cfg.temporal_attention)  # before any weights are read
    if not method.per_layer and cfg.adapter_layers != "all":
        settings = method.settings(cfg)
        raise ConfigError(
            f"model.adapter_layers={cfg.adapter_layers} does not apply to model.method={cfg.method}: "
            f"{method.name} does not adapt blocks one by one" + (f" ({settings})" if settings else "")
        )
    vit = build_vit(cfg.backbone, cfg.image_size)
    # model.adapter_layers chooses the blocks every per-layer method adapts: AIM's adapters, the method's own modules
    # and the head shifts (checked before any weights are read)
    layers = resolve_layers(cfg.adapter_layers, len(vit.blocks))
    with read_once():  # a text head reads the same file for its text tower (build_head, a method's head)
        return _build_model(cfg, vit, layers, method, class_names, trust_pickle)


def _build_model(cfg: ModelConfig, vit: VisionTransformer, layers: list[int], method, class_names: list[str] | None,
                 trust_pickle: bool) -> VideoClassifier:  # fmt: skip
    report = load_backbone(vit, cfg.pretrained, trust_pickle=trust_pickle) if cfg.pretrained else None
    kinds = tuple(k for k in ADAPTER_KINDS if k in cfg.adapters)
    apply_aim(vit, kinds=kinds, layers=cfg.adapter_layers, ratio=cfg.aim.ratio, scale=cfg.aim.scale,
              num_tadapter=cfg.aim.num_tadapter, drop_path_rate=cfg.drop_path_rate)  # fmt: skip
    decoder = method.adapt(vit, cfg, layers)
    apply_stdha(vit, tuple(cfg.head_shifts), layers=layers)
    if method.head is not None:
        head = method.head(cfg, vit.width, class_names, trust_pickle)
    else:
        head = build_head(cfg, vit.width, method.head_std, class_names, trust_pickle)
    model = VideoClassifier(
        vit,
        cfg.num_classes,
        cfg.num_frames,
        temporal_embed=cfg.temporal_embed if cfg.temporal_embed is not None else method.temporal_embed(cfg),
        dropout=cfg.dropout,
        grad_checkpointing=cfg.grad_checkpointing,
        readout=method.readout,
        decoder=decoder,
        head_std=method.head_std,
        feature=cfg.feature or text_feature(cfg),
        head=head,
    )
    model.train_norm = method.train_norm
    set_trainable(model, cfg.finetune)
    set_recompute(model, cfg.recompute)
    set_temporal_attention(model, cfg.temporal_attention)
    model.load_report = report
    return model


def text_tower_facts(row: str):
    """The text tower of a backbone row's releases; a ConfigError naming the rows that have one otherwise."""
    if row not in TEXT_TOWERS:
        raise ConfigError(f"backbone {row!r} has no text tower in its releases; rows with one: "
                          + ", ".join(TEXT_TOWERS))  # fmt: skip
    return TEXT_TOWERS[row]


def text_feature(cfg: ModelConfig) -> str | None:
    """The per-frame feature a text head reads where ``model.feature`` is unset: the one the release's image
    projection was trained on (PE-Core's attention pool, not its class token); None: the row's own."""
    if cfg.head == "text" or cfg.head_init == "text":
        return text_tower_facts(cfg.backbone).image_feature
    return None


def build_head(cfg: ModelConfig, width: int, head_std: float | None, class_names: list[str] | None,
               trust_pickle: bool = False) -> nn.Module | None:  # fmt: skip
    """The head of ``model.head`` / ``model.head_init`` (None: the plain linear head of ``VideoClassifier``).

    With a text head the class names' embeddings (CLIP's prompt ensemble over ``model.templates``) come from the
    text tower of ``model.pretrained``: a ``text`` head keeps them as its cosine classifier; ``head_init=text`` sets
    the linear head to ``W = classes @ image_projᵀ``, bias 0, so that its logits at step 0 are the zero-shot ones
    times the video embedding's norm (the same ranking). Without ``model.pretrained`` (a saved model being rebuilt)
    the head is built empty for its state dict to fill."""
    if cfg.head == "linear" and cfg.head_init == "random":
        return None
    facts = text_tower_facts(cfg.backbone)
    if cfg.head == "text":
        head = TextHead(width, facts.embed_dim, cfg.num_classes, train_classes=cfg.head_train, dropout=cfg.dropout)
        head.sigmoid = facts.logit_bias
    else:
        head = LinearHead(width, cfg.num_classes, cfg.dropout, head_std)
    if cfg.pretrained is None:
        return head
    what = f"model.head={cfg.head}" if cfg.head == "text" else "model.head_init=text"
    if class_names is None:
        raise ConfigError(f"{what} needs the class names: set data.class_names (a file, one name per line)")
    if len(class_names) != cfg.num_classes:
        raise ConfigError(f"{what}: {len(class_names)} class names for model.num_classes={cfg.num_classes}")
    clip = load_clip_text(cfg.pretrained, facts, trust_pickle=trust_pickle).eval()
    classes = class_embeddings(clip, class_names, cfg.templates or KINETICS_TEMPLATES)
    if isinstance(head, TextHead):
        head.set_classes(clip, classes)  # SigLIP's: its bias, sigmoid scores
    else:
        with torch.no_grad():
            head.fc.weight.copy_(classes @ clip.image_proj.T)
            head.fc.bias.zero_()
            if clip.image_proj_bias is not None:  # EVA-CLIP's: the projection's bias through the classes
                head.fc.bias.copy_(classes @ clip.image_proj_bias)
    return head


# 2: the config carries its schema version (config.migrate reads every older one); 1: vidapter 0.1 and 0.2
MODEL_DIR_VERSION = 2


def save_pretrained(
    model, cfg, directory: str | os.PathLike, class_names: list[str] | None = None, intact: str = ""
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and, when given, ``classes.txt`` as the folder ``directory``,
    whole or not at all (files/write_dir_atomic); a failed write is a ``WriteError`` that ends with ``intact``."""
    d = Path(directory)
    if class_names is not None and len(class_names) != model.num_classes:
        raise ConfigError(f"{len(class_names)} class names for a model with {model.num_classes} classes")
    meta = {"format": "vidapter-model", "version": MODEL_DIR_VERSION, "config": to_dict(cfg),
            "backbone_sha256": backbone_digest(model)}  # fmt: skip
    if getattr(model, "load_report", None) is not None:
        meta["backbone_source"] = dataclasses.asdict(model.load_report)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}

    def write(tmp: Path) -> None:
        write_atomic(tmp / "model.safetensors", lambda f: f.write(safetensors_bytes(tensors)))
        if class_names is not None:
            write_text(tmp / "classes.txt", "\n".join(class_names) + "\n")
        write_text(tmp / "config.json", json.dumps(meta, indent=2) + "\n")

    return write_dir_atomic(d, write, intact, replaceable=_is_model_directory)


def _is_model_directory(d: Path) -> bool:
    """A folder save_pretrained may replace: empty, or a vidapter model directory (never any other folder)."""
    if not any(d.iterdir()):
        return True
    try:
        return read_json(d / "config.json").get("format") == "vidapter-model"
    except WeightsError:
        return False


def from_pretrained(directory: str | os.PathLike) -> tuple[VideoClassifier, Config, list[str] | None]:
    """Rebuild a model saved by ``save_pretrained``. Returns (model, config, class names or None); the model keeps
    both as ``model.config`` and ``model.class_names``."""
    d = Path(directory)
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise WeightsError(f"{d}: not a vidapter model directory (no config.json)")
    meta = read_json(cfg_path)
    if meta.get("format") != "vidapter-model":
        raise WeightsError(f"{cfg_path}: format is {meta.get('format')!r}, expected 'vidapter-model'")
    version = meta.get("version", 1)
    if not isinstance(version, int) or version > MODEL_DIR_VERSION:
        raise WeightsError(f"{cfg_path}: written by a newer vidapter (model directory version {version!r}; this one "
                           f"reads up to {MODEL_DIR_VERSION}): upgrade vidapter to read it")  # fmt: skip
    if not isinstance(meta.get("config"), dict):
        raise WeightsError(f"{cfg_path}: missing 'config' (the resolved vidapter config, a JSON object)")
    try:
        cfg = from_dict(meta["config"])
    except (ConfigError, KeyError, TypeError) as e:
        raise WeightsError(f"{cfg_path}: its config is not valid ({e})") from e
    # the weights are inside model.safetensors; the config keeps the name (a text head re-embeds names with it)
    model = build_model(dataclasses.replace(cfg.model, pretrained=None))
    sd = read_safetensors(d / "model.safetensors")
    check_keys(sd, model.state_dict(), f"{d / 'model.safetensors'} does not fit its config.json")
    model.load_state_dict(sd, strict=True)
    model.load_report = LoadReport(str(d), str(d / "model.safetensors"), "vidapter-model", len(sd))
    names_path = d / "classes.txt"
    names = read_class_names_file(names_path)
    model.config, model.class_names = cfg, names
    return model, cfg, names


@torch.no_grad()
def merge_adapters(model: VideoClassifier, cfg: Config, tolerance: float = 1e-4) -> tuple[Config, float]:
    """Fold the model's mergeable modules (the method's ``Method.merge``: LoRA updates, ZeroI2V's linear adapters)
    into its frozen weights, in place, so that it runs as the plain image blocks (plus AIM's adapters, if any, and its
    time shifts, which stay in its config); returns the config of the merged model and the largest logit difference
    on a fixed random clip, checked against ``tolerance`` x (1 + the largest logit)."""
    method = get_method(cfg.model.method)
    if method.merge is None:
        raise ConfigError(f"nothing to merge: model.method is {cfg.model.method!r}; the methods that merge are "
                          f"{', '.join(mergeable())}")  # fmt: skip
    g = torch.Generator().manual_seed(0)
    size = model.backbone.image_size
    clip = torch.randn(2, 3, model.num_frames, size, size, generator=g).to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    before = model(clip).double()
    merged_modules = method.merge(model)
    after = model(clip).double()
    model.train(was_training)
    diff = float((after - before).abs().max())
    if diff > tolerance * (1 + float(before.abs().max())):
        raise ValueError(f"merged logits differ from the unmerged ones by {diff:.3g}, above the tolerance")
    if not merged_modules:
        raise ConfigError(f"nothing to merge: the {method.name} model has none of its modules left to fold")
    merged = from_dict(to_dict(cfg))
    # the updates are in the weights now: the model is AIM's plain blocks with AIM's adapters (model.adapters), the
    # head shifts and the temporal embedding as they were, the last stated explicitly since AIM's default depends on
    # model.adapters
    merged.model.method = AIM.name
    merged.model.temporal_embed = model.temporal_embed is not None
    return merged, diff


def read_class_names_file(path: Path) -> list[str] | None:
    """The ``classes.txt`` beside a model or checkpoint (one name per line), or None when there is none."""
    if not path.exists():
        return None
    try:
        return read_class_names(path)
    except (OSError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: not a readable text file of class names ({type(e).__name__})") from e


def is_model_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is what ``load_model`` reads: a vidapter model directory, a run directory, or a training
    checkpoint as the engine names them (``best.pt``, ``last.pt``); not, say, a CLIP file."""
    path = Path(path)
    if not path.is_dir():
        return path.name in ("best.pt", "last.pt")
    if any((path / n).exists() for n in ("best.pt", "last.pt")):
        return True
    return any((d / "config.json").exists() and _is_model_directory(d) for d in (path, path / "model"))


def load_model(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[VideoClassifier, Config, list[str] | None]:
    """A model directory (config.json + model.safetensors), a run directory, or a training checkpoint file.

    Checkpoints and the backbone weights they name are read with PyTorch's restricted loader, which runs no code;
    ``trust_pickle`` reads them with full pickle (only for files from a source you trust)."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return from_pretrained(path)
    if (path / "model" / "model.safetensors").exists():
        return from_pretrained(path / "model")
    ckpt = path if path.is_file() else next((path / n for n in ("best.pt", "last.pt") if (path / n).exists()), None)
    if ckpt is None:
        if not path.exists():
            raise CheckpointError(f"{path}: no such file or directory")
        raise CheckpointError(f"{path}: no model directory, model/ folder, best.pt or last.pt")
    state = load_checkpoint(ckpt, trust_pickle)
    try:
        cfg = from_dict(state["config"])
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt}: its config is not valid ({e})") from e
    names = read_class_names_file(ckpt.parent / "classes.txt")
    model = build_model(cfg.model, trust_pickle=trust_pickle, class_names=names)
    if backbone_digest(model) != state["backbone"].get("sha256"):
        raise CheckpointError(
            f"{ckpt}: the backbone loaded from {cfg.model.pretrained!r} is not the one it was trained on"
        )
    check_keys(state["model"], trainable_state_dict(model), f"{ckpt} does not fit its config")
    model.load_state_dict(state["model"], strict=False)
    model.config, model.class_names = cfg, names
    return model, cfg, names


@torch.no_grad()
def span_views(video, first: int, last: int, sampler, transform) -> tuple[torch.Tensor, np.ndarray]:
    """The test views (V, C, T, H, W) of frames ``first``..``last`` of an open video, and the frame indices sampled
    (clips x T)."""
    idx = sampler(last - first, train=False) + first
    arr = video.get(idx.reshape(-1).tolist())
    frames = torch.from_numpy(arr).view(*idx.shape, *arr.shape[1:])  # (clips, T, H, W, 3)
    return torch.cat([transform(c) for c in frames]), idx


def file_views(model: torch.nn.Module, cfg: Config, path: str | os.PathLike) -> torch.Tensor:
    """The test views (V, C, T, H, W) of a whole video file, normalised, as ``predict`` feeds them to the model."""
    from vidapter.data.decode import open_video

    facts = model.backbone.facts
    transform = clip_transform(cfg.data, "test", facts.mean, facts.std)
    with open_video(path, cfg.data.backend) as video:
        return span_views(video, 0, video.num_frames, frame_sampler(cfg.data, cfg.model.num_frames, "test"),
                          transform)[0]  # fmt: skip


@dataclasses.dataclass
class Decoded:
    """A video's test views, decoded for prediction: one span (the whole video, or one window) after another."""

    path: str
    frames: int
    fps: float
    window: float | None
    spans: list[tuple[int, int]]  # [first, last) source frames
    views: list[torch.Tensor]  # per span (V, C, T, H, W), normalised
    indices: list[np.ndarray]  # per span, the frames sampled (clips x T)


def decode_for_prediction(model: torch.nn.Module, cfg: Config, path: str | os.PathLike, window: float | None = None,
                          max_seconds: float | None = None) -> Decoded:  # fmt: skip
    """The test views of ``path`` (with ``window``, seconds: of each window in turn). Raises VideoError when the file
    cannot be read, or is longer than ``max_seconds``."""
    from vidapter.data.decode import VideoError, open_video  # the video library loads on first use

    facts = model.backbone.facts
    transform = clip_transform(cfg.data, "test", facts.mean, facts.std)
    sampler = frame_sampler(cfg.data, cfg.model.num_frames, "test")
    with open_video(path, cfg.data.backend) as video:
        n, fps = video.num_frames, getattr(video, "fps", 0.0) or 0.0
        if max_seconds is not None and fps and n / fps > max_seconds:
            raise VideoError(path, f"{n / fps:.1f} s long, over the limit of {max_seconds:g} s")
        if window is None:
            spans = [(0, n)]
        else:
            if not fps:
                raise VideoError(path, "frame rate unknown: windows in seconds are not possible")
            size = max(1, round(window * fps))
            spans = [(s, min(s + size, n)) for s in range(0, n, size)]
        views, indices = [], []
        for first, last in spans:
            v, idx = span_views(video, first, last, sampler, transform)
            views.append(v)
            indices.append(idx)
    return Decoded(str(path), n, fps, window, spans, views, indices)


def scores(model: torch.nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """(V, C) logits of one video's views -> (C,) scores: a SigLIP text head scores each class on its own (sigmoid),
    every other head a softmax over classes; the views' scores averaged."""
    logits = logits.float()
    return (logits.sigmoid() if getattr(model.head, "sigmoid", False) else logits.softmax(-1)).mean(0)


def prediction(decoded: Decoded, span_scores: list[torch.Tensor], names: list[str] | None, top_k: int) -> dict:
    """What ``predict --json`` prints for one video: {"file", "frames", "top": [{label, name, prob}]}, or with a
    window {"file", "frames", "windows": [{"top", "start_s", "end_s"}]}."""
    results = []
    for (first, last), sc in zip(decoded.spans, span_scores, strict=True):
        probs = sc.cpu().numpy()
        top = np.argsort(-probs)[:top_k]
        entry = {"top": [{"label": int(i), "name": names[i] if names else str(i), "prob": float(probs[i])}
                         for i in top]}  # fmt: skip
        if decoded.window is not None:
            entry.update(start_s=first / decoded.fps, end_s=last / decoded.fps)
        results.append(entry)
    out = {"file": decoded.path, "frames": decoded.frames}
    if decoded.window is None:
        out.update(results[0])
    else:
        out["windows"] = results
    return out


def predict_file(
    model: torch.nn.Module,
    cfg: Config,
    path: str | os.PathLike,
    *,
    names: list[str] | None = None,
    top_k: int = 5,
    window: float | None = None,
    device: torch.device | str = "cpu",
    amp: torch.dtype | None = None,
) -> dict:
    """Top-k classes for ``path`` under the test view protocol; with ``window`` (seconds) one result per window;
    ``amp``: autocast dtype (None: the model's own precision).

    Raises VideoError when the file cannot be read."""
    model.eval()
    device = torch.device(device)
    decoded = decode_for_prediction(model, cfg, path, window)
    span_scores = []
    for views in decoded.views:
        with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            span_scores.append(scores(model, model(views.to(device))))
    return prediction(decoded, span_scores, names, top_k)

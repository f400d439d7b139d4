"""The model builder: a ``ModelConfig`` section in, a ready ``VideoClassifier`` out (weights loaded, set frozen)."""

from __future__ import annotations

from vidapter.adapters.aim import ADAPTER_KINDS, apply_aim, check_temporal_attention, set_temporal_attention
from vidapter.adapters.peft import set_trainable
from vidapter.config import ModelConfig
from vidapter.models.pretrained import load_backbone
from vidapter.models.video import VideoClassifier
from vidapter.models.vit import build_vit, set_recompute

# Table 1 rows as adapter sets; anything else must be a subset of ADAPTER_KINDS (joint without temporal is allowed).
ABLATION_ROWS = {
    "frozen space-only": ([], "adapters"),
    "fine-tuned space-only": ([], "full"),
    "spatial adaptation": (["spatial"], "adapters"),
    "+ temporal adaptation": (["spatial", "temporal"], "adapters"),
    "+ joint adaptation (AIM)": (["spatial", "temporal", "joint"], "adapters"),
    "full fine-tuning of AIM": (["spatial", "temporal", "joint"], "full"),
}


def build_model(cfg: ModelConfig, trust_pickle: bool = False) -> VideoClassifier:
    """Build the image ViT, load its pretrained weights (if named), inject AIM adapters, set the trainable set.

    The load report is kept as ``model.load_report`` (None for a random backbone).
    """
    unknown = sorted(set(cfg.adapters) - set(ADAPTER_KINDS))
    if unknown:
        raise ValueError(f"model.adapters: unknown kinds {unknown}; allowed: {list(ADAPTER_KINDS)}")
    check_temporal_attention(cfg.temporal_attention)  # before any weights are read
    vit = build_vit(cfg.backbone, cfg.image_size)
    report = load_backbone(vit, cfg.pretrained, trust_pickle=trust_pickle) if cfg.pretrained else None
    kinds = tuple(k for k in ADAPTER_KINDS if k in cfg.adapters)
    apply_aim(
        vit,
        kinds=kinds,
        layers=cfg.adapter_layers,
        ratio=cfg.ratio,
        scale=cfg.scale,
        num_tadapter=cfg.num_tadapter,
        drop_path_rate=cfg.drop_path_rate,
    )
    # The reference adds the temporal embedding in every adapted variant; space-only baselines (TimeSformer's
    # "space_only") have none. An explicit model.temporal_embed overrides both.
    temporal_embed = cfg.temporal_embed if cfg.temporal_embed is not None else bool(kinds)
    model = VideoClassifier(
        vit,
        cfg.num_classes,
        cfg.num_frames,
        temporal_embed=temporal_embed,
        dropout=cfg.dropout,
        grad_checkpointing=cfg.grad_checkpointing,
    )
    set_trainable(model, cfg.finetune)
    set_recompute(model, cfg.recompute)
    set_temporal_attention(model, cfg.temporal_attention)
    model.load_report = report
    return model

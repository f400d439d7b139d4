"""Video classifier over an image ViT: frames through the (adapted) backbone, per-frame CLS, temporal mean, linear head.

Network as in AIM (arXiv 2302.03024) and shared/AIM_SPEC.md section 3: a temporal embedding (zeros, (1, T, D)) is added
once to every token after the positional embedding and before the pre-norm; the head is mean over T -> Dropout(0.5)
-> Linear(D, K) with weight ~ N(0, 0.01), bias 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidapter.models.vit import VisionTransformer


class VideoClassifier(nn.Module):
    """Image backbone applied to video. Input (B, 3, T, H, W) normalised float video; output logits (B, K)."""

    def __init__(
        self,
        backbone: VisionTransformer,
        num_classes: int,
        num_frames: int,
        *,
        temporal_embed: bool = True,
        dropout: float = 0.5,
        grad_checkpointing: bool = False,
    ):
        super().__init__()
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.backbone = backbone
        self.num_frames = num_frames
        self.grad_checkpointing = grad_checkpointing
        d = backbone.width
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, d)) if temporal_embed else None
        self.head = nn.Module()
        self.head.dropout = nn.Dropout(dropout)
        self.head.fc = nn.Linear(d, num_classes)
        nn.init.normal_(self.head.fc.weight, std=0.01)
        nn.init.zeros_(self.head.fc.bias)

    @property
    def num_classes(self) -> int:
        return self.head.fc.out_features

    def check_input(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected video of shape (B, 3, T, H, W), got {tuple(video.shape)}")
        if video.shape[2] != self.num_frames:
            raise ValueError(
                f"model was built for T={self.num_frames} frames, got {video.shape[2]}; sample {self.num_frames} "
                "frames, or call set_num_frames(T) to interpolate the temporal embedding"
            )

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, T, D): final-normed class token of every frame."""
        self.check_input(video)
        b, t = video.shape[0], video.shape[2]
        vit = self.backbone
        x = vit.embed(rearrange(video, "b c t h w -> (b t) c h w"))
        if self.temporal_embed is not None:
            x = rearrange(x, "(b t) n d -> b t n d", t=t) + self.temporal_embed.to(x.dtype).unsqueeze(2)
            x = rearrange(x, "b t n d -> (b t) n d")
        x = vit.norm_pre(x)
        for blk in vit.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, t, use_reentrant=False)
            else:
                x = blk(x, t)
        return rearrange(vit.norm(x[:, 0]), "(b t) d -> b t d", b=b)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, K) logits."""
        x = self.forward_features(video).mean(dim=1)
        return self.head.fc(self.head.dropout(x))

    @classmethod
    def from_pretrained(cls, path) -> VideoClassifier:
        """Load a model directory, a run directory or a checkpoint, ready for ``predict``."""
        from vidapter.predict import load_model

        model, cfg, names = load_model(path)
        model.config, model.class_names = cfg, names
        return model

    def predict(self, path, top_k: int = 5, window: float | None = None) -> dict:
        """Classify one video file under the test view protocol: {"file", "frames", "top": [{label, name, prob}]}."""
        from vidapter.predict import predict_file

        if getattr(self, "config", None) is None:
            raise ValueError("predict needs the model's config: load it with VideoClassifier.from_pretrained(dir)")
        device = next(self.parameters()).device
        return predict_file(self, self.config, path, names=self.class_names, top_k=top_k, window=window, device=device)

    @torch.no_grad()
    def set_num_frames(self, num_frames: int) -> None:
        """Change T, linearly interpolating the temporal embedding (a documented choice, not in the paper)."""
        if self.temporal_embed is not None and num_frames != self.num_frames:
            te = self.temporal_embed.detach().transpose(1, 2)  # (1, D, T)
            te = F.interpolate(te.float(), size=num_frames, mode="linear", align_corners=False)
            old = self.temporal_embed
            self.temporal_embed = nn.Parameter(te.transpose(1, 2).to(old.dtype), requires_grad=old.requires_grad)
        self.num_frames = num_frames

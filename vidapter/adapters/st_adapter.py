"""ST-Adapter: a depthwise temporal convolution inside a bottleneck, on the residual stream of a frozen image ViT.

Pan et al., "ST-Adapter: Parameter-Efficient Image-to-Video Transfer Learning", NeurIPS 2022, arXiv 2206.13559.
Behaviour follows the official code, linziyi96/st-adapter at b914b388 (``models_adapter.py``), checked against a
transcription of it in tests/adapters/test_st_adapter.py (tests/reference/st_adapter.py):

- adapter: ``fc2(conv(fc1(x)))`` with **no activation**; ``conv`` is a depthwise Conv3d with kernel (3, 1, 1) over
  (T, H, W), padding (1, 0, 0), so each patch mixes with itself at t - 1, t, t + 1 (zero padding after fc1: a missing
  frame contributes nothing, not even fc1's bias). The class token (and any registers) bypasses the adapter. The
  result is added to the patch tokens (the official code adds in place; the numbers are the same).
- init: conv weight and bias zero, fc1/fc2 biases zero, fc1/fc2 weights PyTorch's default U(+-1/sqrt(fan_in)): every
  adapter is the identity at initialisation.
- placement ("adapter layers x bottleneck channels"): ``12x384`` is one adapter per block before the MLP (after the
  attention residual, before norm2); ``24x384`` adds one before the attention (before norm1).
- readout (``VideoClassifier`` readout ``mean_norm``): the class token of every frame after the last block, mean over
  T, then the *frozen* final norm (CLIP's ln_post), dropout 0.5 and a new Linear initialised N(0, 0.02^2), bias 0.
- trainable: the adapters and the head; no temporal embedding. The last block's pre-MLP adapter edits patch tokens
  only, which no later layer reads (the head reads the class token): it trains with gradient 0, as in the official
  code.

Names: ``blocks.{i}.adapter_pre_attn`` and ``blocks.{i}.adapter_pre_mlp``, each ``{fc1, conv, fc2}``, as the
official checkpoints (``transformer.resblocks.{i}`` there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from vidapter.adapters.aim import AIM
from vidapter.adapters.registry import AdapterModule, Method, Official, register_method
from vidapter.errors import ConfigError
from vidapter.models.convert import st_adapter_official_to_vidapter
from vidapter.models.vit import Block, Linear, VisionTransformer

POSITIONS = ("attn", "mlp")


class STAdapter(AdapterModule, nn.Module):
    """fc1 (D -> hidden) -> depthwise temporal conv -> fc2 (hidden -> D), added to the patch tokens only."""

    def __init__(self, dim: int, hidden: int, kernel: int = 3, prefix: int = 1):
        super().__init__()
        self.prefix = prefix  # tokens before the patches (class token, registers): they bypass the adapter
        if hidden < 1 or kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"ST-Adapter needs a positive width and an odd kernel, got {hidden} and {kernel}")
        self.fc1 = Linear(dim, hidden)
        self.conv = nn.Conv3d(hidden, hidden, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=hidden)
        self.fc2 = Linear(hidden, dim)
        for p in (self.conv.weight, self.conv.bias, self.fc1.bias, self.fc2.bias):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D); frames of a video consecutive, N = prefix + a square grid of patches."""
        p = self.prefix
        grid = round((x.shape[1] - p) ** 0.5)
        if grid * grid != x.shape[1] - p:
            raise ValueError(f"ST-Adapter needs a square grid of patches, got {x.shape[1] - p} patch tokens")
        h = self.fc1(x[:, p:])
        h = rearrange(h, "(b t) (gh gw) c -> b c t gh gw", t=num_frames, gh=grid)
        h = rearrange(self.conv(h), "b c t gh gw -> (b t) (gh gw) c")
        return torch.cat([x[:, :p], x[:, p:] + self.fc2(h)], dim=1)


class STBlock(nn.Module):
    """A frozen image block with ST-Adapters before its attention and/or its MLP (serial, on the residual stream)."""

    def __init__(self, block: Block, dim: int, hidden: int, positions: tuple[str, ...], kernel: int = 3,
                 prefix: int = 1):  # fmt: skip
        super().__init__()
        unknown = set(positions) - set(POSITIONS)
        if unknown or not positions:
            raise ConfigError(f"ST-Adapter positions must be a non-empty subset of {POSITIONS}, got {list(positions)}")
        self.norm1, self.attn, self.norm2, self.mlp = block.norm1, block.attn, block.norm2, block.mlp
        self.ls1, self.ls2 = block.ls1, block.ls2
        self.adapter_pre_attn = STAdapter(dim, hidden, kernel, prefix) if "attn" in positions else None
        self.adapter_pre_mlp = STAdapter(dim, hidden, kernel, prefix) if "mlp" in positions else None

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B*T, N, D) -> (B*T, N, D)."""
        if num_frames is None:
            raise ValueError("an ST-Adapter block needs num_frames")
        if self.adapter_pre_attn is not None:
            x = self.adapter_pre_attn(x, num_frames)
        x = x + self.ls1(self.attn(self.norm1(x), num_frames=num_frames))
        if self.adapter_pre_mlp is not None:
            x = self.adapter_pre_mlp(x, num_frames)
        return x + self.ls2(self.mlp(self.norm2(x), normed_from=(self.norm2, x)))


def apply_st_adapter(
    vit: VisionTransformer,
    *,
    width: int = 384,
    positions: tuple[str, ...] = ("mlp",),
    kernel: int = 3,
    layers: list[int] | None = None,
) -> list[int]:
    """Replace the blocks of ``vit`` (or ``layers``) in place by ST-Adapter blocks; returns the adapted indices.
    ``positions=("mlp",)`` is the official ``12x384`` setting on ViT-B, ``("attn", "mlp")`` its ``24x384``."""
    chosen = list(range(len(vit.blocks))) if layers is None else layers
    for i in chosen:
        vit.blocks[i] = STBlock(vit.blocks[i], vit.width, width, tuple(positions), kernel, vit.num_prefix)
    return chosen


def _shape_from_official(cfg, sd: dict) -> None:
    """An ST-Adapter release fixes classes and where and how wide its adapters are."""
    AIM.official[0].shape(cfg, sd)
    cfg.st_adapter.positions = [p for p in ("attn", "mlp") if any(f".adapter_pre_{p}." in k for k in sd)]
    cfg.st_adapter.width = next(v.shape[0] for k, v in sd.items() if k.endswith(".fc1.weight"))


@dataclass
class STAdapterConfig:
    """``model.st_adapter``: the official ViT-B ``12x384`` by default."""

    width: int = 384  # bottleneck channels
    positions: list[str] = field(default_factory=lambda: ["mlp"])  # [mlp]: 12x384 on ViT-B; [attn, mlp]: 24x384
    kernel: int = 3  # temporal kernel of the depthwise conv

    def __post_init__(self):
        if self.width < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"model.st_adapter needs a positive width and an odd kernel, got {self.width} and "
                              f"{self.kernel}")  # fmt: skip
        if not self.positions or not set(self.positions) <= set(POSITIONS):
            raise ConfigError(f"model.st_adapter.positions must be a non-empty subset of {list(POSITIONS)}, got "
                              f"{self.positions}")  # fmt: skip


def _adapt(vit: VisionTransformer, cfg, layers: list[int]) -> None:
    st = cfg.st_adapter
    apply_st_adapter(vit, width=st.width, positions=tuple(st.positions), kernel=st.kernel, layers=layers)


ST_ADAPTER = register_method(Method(
    name="st_adapter",
    paper="ST-Adapter: Pan et al., NeurIPS 2022 (arXiv 2206.13559)",
    trains="depthwise-conv adapters before attention and/or MLP, final norm of the frame mean, head",
    adapt=_adapt,
    readout="mean_norm",
    temporal_embed=lambda cfg: False,
    train_norm=False,
    head_std=0.02,
    settings=lambda cfg: f"ST-Adapters of {cfg.st_adapter.width} channels before "
                         f"{' and '.join(cfg.st_adapter.positions)}, temporal kernel {cfg.st_adapter.kernel}",
    official=(Official("st-adapter-official", "st_adapter_official", st_adapter_official_to_vidapter, False,
                       _shape_from_official),),
    config=STAdapterConfig,
    identity_at_init=True,
))  # fmt: skip

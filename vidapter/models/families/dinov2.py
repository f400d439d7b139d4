"""DINOv2 (Oquab et al., 2024), with and without registers (Darcet et al., 2024): LayerScale, positions for 518 px
resampled as its own code does, registers without position, the SwiGLU giant. Meta's original files, Hugging
Face's, timm's."""

from __future__ import annotations

from dataclasses import replace

from vidapter.models.family import IMAGENET_MEAN, IMAGENET_STD, Family, ViTFacts, Weights, hub, register_family


def dinov2_facts(width: int, depth: int, heads: int, registers: int = 0, swiglu: bool = False,
                 size: int = 518) -> ViTFacts:  # fmt: skip
    return ViTFacts(width, depth, heads, 14, size, "silu" if swiglu else "gelu", 1e-6, False, False, True,
                    IMAGENET_MEAN, IMAGENET_STD, layout="timm", family="dinov2",
                    mlp="swiglu_packed" if swiglu else "plain", mlp_hidden=4096 if swiglu else None,
                    registers=registers, pos_embed="patches" if registers else "cls",
                    pos_resize="dinov2_reg" if registers else "dinov2", layer_scale=True,
                    licence="Apache-2.0")  # fmt: skip


_SIZES = (("s", "small"), ("b", "base"), ("l", "large"), ("g", "giant"))
_SHAPES = {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16), "g": (1536, 40, 24)}

DINOV2 = register_family(Family(
    name="dinov2",
    about="DINOv2, with and without registers",
    rows={
        **{f"dinov2_vit{s}14": dinov2_facts(*_SHAPES[s], swiglu=s == "g") for s, _ in _SIZES},
        **{f"dinov2_vit{s}14_reg": dinov2_facts(*_SHAPES[s], registers=4, swiglu=s == "g") for s, _ in _SIZES},
    },
    tiny={
        "tiny_dinov2": replace(dinov2_facts(64, 2, 4, size=32), patch_size=8),
        "tiny_dinov2_reg": replace(dinov2_facts(64, 2, 4, registers=4, size=32), patch_size=8),
        "tiny_dinov2_swiglu": replace(dinov2_facts(64, 2, 4, swiglu=True, size=32), patch_size=8, mlp_hidden=168),
    },
    weights={
        **{f"timm:vit_{n}_patch14{t}_dinov2.lvd142m": Weights(f"dinov2_vit{s}14{r}",
                                                               hub(f"timm/vit_{n}_patch14{t}_dinov2.lvd142m"))
           for s, n in _SIZES for r, t in (("", ""), ("_reg", "_reg4"))},
        **{f"hf:facebook/dinov2-{n}": Weights(f"dinov2_vit{s}14", hub(f"facebook/dinov2-{n}")) for s, n in _SIZES},
        **{f"hf:facebook/dinov2-with-registers-{n}": Weights(f"dinov2_vit{s}14_reg",
                                                             hub(f"facebook/dinov2-with-registers-{n}"))
           for s, n in _SIZES},
        **{f"dinov2:dinov2_vit{s}14{reg}": Weights(
            f"dinov2_vit{s}14{'_reg' if reg else ''}",
            f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{s}14/dinov2_vit{s}14{reg}_pretrain.pth")
           for s in "sblg" for reg in ("", "_reg4")},
    },
    layouts=("dinov2", "hf_dinov2", "timm"),
    timm_architectures=r".+_dinov2",
))  # fmt: skip

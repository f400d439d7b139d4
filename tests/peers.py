"""Tiny random models of the real peer libraries (nothing is downloaded), and the shapes of the tiny backbones."""

from __future__ import annotations

import torch
from torch import nn

# tiny_clip / tiny_in21k in vidapter.models.vit.BACKBONES have these shapes
WIDTH, DEPTH, HEADS, PATCH, SIZE = 64, 2, 4, 8, 32


@torch.no_grad()
def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter a random value (LayerNorm scales near 1), so parity tests exercise every tensor."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        is_norm_scale = p.ndim == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight")
        p.copy_(1 + 0.1 * noise if is_norm_scale else 0.1 * noise)
    return module


def open_clip_model(seed: int = 0, vocab: int = 100, context: int = 16):
    """A tiny OpenAI-architecture (QuickGELU) CLIP from open_clip, with a text tower beside the image tower (vocab
    49408 and context 77: the text tower of the tiny_clip row, which reads the real tokenizer's ids)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=DEPTH, width=WIDTH, head_width=WIDTH // HEADS, patch_size=PATCH, image_size=SIZE)
    text = CLIPTextCfg(context_length=context, vocab_size=vocab, width=32, heads=2, layers=1)
    return randomize_(CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text, quick_gelu=True), seed).eval()


def hf_clip_model(seed: int = 0, vocab: int = 100, context: int = 16):
    """A tiny Hugging Face CLIPModel of the same towers as ``open_clip_model`` (its end token the largest id)."""
    from transformers import CLIPConfig, CLIPModel

    text = dict(hidden_size=32, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2, vocab_size=vocab,
                max_position_embeddings=context, hidden_act="quick_gelu", eos_token_id=vocab - 1)  # fmt: skip
    vision = dict(hidden_size=WIDTH, intermediate_size=4 * WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
                  image_size=SIZE, patch_size=PATCH, hidden_act="quick_gelu")  # fmt: skip
    return randomize_(CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)), seed).eval()


class OpenAIRelease(nn.Module):
    """Shaped like OpenAI's released CLIP: both towers at the top level plus three integer attributes."""

    def __init__(self, clip):
        super().__init__()
        for name, child in clip.named_children():
            self.add_module(name, child)
        for name, p in clip.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, value in (("input_resolution", SIZE), ("context_length", 16), ("vocab_size", 100)):
            self.register_buffer(name, torch.tensor(value))

    def encode_image(self, x):
        return self.visual(x)


def openai_release_archive(path, images):
    """Write ``open_clip_model()`` as OpenAI publishes its CLIP files: a TorchScript archive of the whole model in
    fp16. Returns the model (fp16)."""
    release = OpenAIRelease(open_clip_model()).half()
    torch.jit.trace_module(release, {"encode_image": images.half()}, check_trace=False).save(str(path))
    return release


def hf_clip_vision(seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    cfg = CLIPVisionConfig(
        hidden_size=WIDTH,
        intermediate_size=4 * WIDTH,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        image_size=SIZE,
        patch_size=PATCH,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    return randomize_(CLIPVisionModel(cfg), seed).eval()


def timm_vit(seed: int = 0, clip_style: bool = False):
    """timm ViT: IN-21K style (GELU, eps 1e-6, no pre-norm) or CLIP style (QuickGELU, eps 1e-5, pre-norm)."""
    from functools import partial

    from timm.layers import PatchEmbed
    from timm.models.vision_transformer import VisionTransformer

    kw = dict(img_size=SIZE, patch_size=PATCH, embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, global_pool="token")
    if clip_style:
        kw.update(pre_norm=True, act_layer="quick_gelu", norm_layer=partial(nn.LayerNorm, eps=1e-5), num_classes=10)
        kw.update(embed_layer=partial(PatchEmbed, bias=False))
    else:
        kw.update(num_classes=10)
    return randomize_(VisionTransformer(**kw), seed).eval()


# The tiny vidapter rows of each image family and the timm model of the same structure: (timm name, keyword
# arguments, the pooled feature timm's pre-logits output is). Built with random weights, nothing downloaded.
TINY = dict(embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, img_size=SIZE, patch_size=PATCH, num_classes=0)
TIMM_FAMILIES = {
    "tiny_open_clip": ("vit_base_patch16_clip_224", {}, "cls"),
    "tiny_siglip": ("vit_base_patch16_siglip_224", {"act_layer": "gelu_tanh"}, "pool"),
    "tiny_dinov2": ("vit_small_patch14_dinov2", {}, "cls"),
    "tiny_dinov2_reg": ("vit_small_patch14_reg4_dinov2", {}, "cls"),
    "tiny_dinov2_swiglu": ("vit_giant_patch14_dinov2", {"mlp_ratio": 5.25}, "cls"),  # packed fc1: 2 x 168
    "tiny_dinov3": ("vit_small_patch16_dinov3_qkvb", {"global_pool": "token"}, "cls"),
    "tiny_pe_core": ("vit_pe_core_base_patch16_224", {"ref_feat_shape": (4, 4)}, "pool"),
    "tiny_eva02": ("eva02_base_patch16_clip_224", {"ref_feat_shape": (4, 4)}, "cls"),
}


def timm_family(row: str, seed: int = 0):
    """The timm model of ``row``'s structure (TIMM_FAMILIES), every parameter random."""
    import timm

    name, kw, _ = TIMM_FAMILIES[row]
    return randomize_(timm.create_model(name, pretrained=False, **{**TINY, **kw}), seed).eval()


def timm_features(model, images: torch.Tensor) -> torch.Tensor:
    return model.forward_head(model.forward_features(images), pre_logits=True)

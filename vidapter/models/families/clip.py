"""OpenAI CLIP (Radford et al., 2021): QuickGELU, LayerNorm in fp32, ln_pre, OpenAI's layout; the released
TorchScript archives and state dicts, open_clip's and Hugging Face's copies, timm's. Also the demo ViT, of the same
structure, pretrained by vidapter on synthetic images and shipped in the package."""

from __future__ import annotations

from vidapter.models.family import CLIP_MEAN, CLIP_STD, Family, TextFacts, ViTFacts, Weights, register_family


def clip_facts(width: int, depth: int, heads: int, patch: int, size: int = 224, **kw) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "quick_gelu", 1e-5, True, True, False, CLIP_MEAN, CLIP_STD, **kw)


# the text towers of the releases (open_clip model_configs ViT-B-32/B-16/L-14/L-14-336: width, layers, heads, embed)
TEXT_B = TextFacts(512, 12, 8, 512)
TEXT_L = TextFacts(768, 12, 12, 768)
TEXT_TINY = TextFacts(32, 1, 2, 32)  # the tiny rows' (tests): the real vocabulary and context, one block of width 32
# the demo ViT's, pretrained by vidapter on captions of synthetic images (demo/pretrain_text.py; context 32)
TEXT_DEMO = TextFacts(32, 2, 2, 64, context=32)


def _openai(backbone: str, sha256: str, filename: str) -> Weights:
    """OpenAI publishes each file's sha256 as a directory of its address."""
    return Weights(backbone, f"https://openaipublic.azureedge.net/clip/models/{sha256}/{filename}", sha256)


CLIP = register_family(Family(
    name="clip",
    about="OpenAI CLIP",
    rows={
        "clip_vitb32": clip_facts(768, 12, 12, 32),
        "clip_vitb16": clip_facts(768, 12, 12, 16),
        "clip_vitl14": clip_facts(1024, 24, 16, 14),
        "clip_vitl14_336": clip_facts(1024, 24, 16, 14, 336),
    },
    tiny={
        "demo_vit": clip_facts(96, 4, 3, 8, 32),  # pretrained by vidapter on synthetic images (demo/pretrain.py)
        "tiny_clip": clip_facts(64, 2, 4, 8, 32),  # width 64, depth 2, 4 heads, patch 8, 32 px: a 4x4 grid
    },
    weights={
        "openai:ViT-B/32": _openai(
            "clip_vitb32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"
        ),
        "openai:ViT-B/16": _openai(
            "clip_vitb16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"
        ),
        "openai:ViT-L/14": _openai(
            "clip_vitl14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"
        ),
        "openai:ViT-L/14@336px": _openai(
            "clip_vitl14_336", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"
        ),
        # python -m vidapter.demo.pretrain; shipped in the package
        "vidapter:demo-vit": Weights("demo_vit", "", packaged="demo/demo_vit.safetensors"),
    },
    layouts=("openai", "open_clip", "hf_clip", "timm"),
    timm_architectures=r"vit_.+_clip_(quickgelu_)?\d+(_quickgelu)?",
    gelu_variants=True,
    text={"clip_vitb32": TEXT_B, "clip_vitb16": TEXT_B, "clip_vitl14": TEXT_L, "clip_vitl14_336": TEXT_L,
          "tiny_clip": TEXT_TINY, "demo_vit": TEXT_DEMO},
))  # fmt: skip

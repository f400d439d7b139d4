"""The image families' registry: what every image model vidapter adapts is, and where its weights are published.

A family is one module under ``vidapter/models/families/`` that registers a ``Family``: its backbone rows (the
architecture facts, ``ViTFacts``, one row per structure, and its tiny rows for tests), its published weight names,
the checkpoint layouts its files come in (``models/layouts.py`` recognises and converts them) and the timm
architecture names that are its own (the metadata check of a timm ``config.json``). A model is built from a named
row, never guessed from a layer count or a file name. A row holds what the weights alone cannot say (activation,
LayerNorm eps, input mean/std) and the switches where families differ from the OpenAI CLIP block: LayerScale,
register tokens, rotary positions, q/k/v bias, SwiGLU MLPs, sub-LayerNorms, the attention pooling head. The facts
were read from each family's release and checked against timm, open_clip and transformers
(tests/models/test_families.py). ``register_family`` adds one of your own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLIP_MEAN = (122.77, 116.75, 104.09)
CLIP_STD = (68.50, 66.63, 70.32)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
HALF = (127.5, 127.5, 127.5)  # mean = std = 0.5 on the 0-1 scale (SigLIP, PE, the L/14 LAION-2B CLIP)


@dataclass(frozen=True)
class TextFacts:
    """A CLIP-style text transformer's sizes and activation (OpenAI's CLIP: QuickGELU; open_clip's LAION/DataComp
    retrainings: GELU), read from each release's model config (open_clip ``model_configs/*.json``)."""

    width: int
    layers: int
    heads: int
    embed_dim: int  # the joint image-text space (the text and image projections' output)
    context: int = 77
    vocab: int = 49408
    act: str = "quick_gelu"
    ln_eps: float = 1e-5
    mlp_hidden: int | None = None  # None: 4 x width
    causal: bool = True  # CLIP's causal mask; SigLIP's text tower attends both ways
    pool: str = "eot"  # the feature at the first end-of-text token (CLIP) or at the last position (SigLIP)
    proj_bias: bool = False  # the text projection has a bias (SigLIP's head Linear)
    logit_bias: bool = False  # a learned bias on the logits, read through a sigmoid (SigLIP)
    tokenizer: str = "clip"  # clip (OpenAI's BPE, shipped) | sentencepiece (the directory's spiece.model) | gemma
    # (SigLIP 2: the directory's tokenizer.json)
    image_proj_bias: bool = False  # the image projection is a Linear with bias (EVA-CLIP's visual head)
    image_feature: str = "cls"  # the image feature the projection reads: the class token, or the pooling head's
    # output ("pool": SigLIP's MAP head, PE-Core's attention pool)


@dataclass(frozen=True)
class ViTFacts:
    """Architecture facts of one image backbone. Mean/std are on the 0-255 scale, as the reference configs."""

    width: int
    depth: int
    heads: int
    patch_size: int
    image_size: int  # the native size: the grid its position table was trained at
    act: str  # vit.activation's: quick_gelu (OpenAI CLIP), gelu (erf), gelu_tanh (SigLIP), silu (SwiGLU MLPs)
    ln_eps: float
    ln_fp32: bool  # CLIP computes LayerNorm in fp32 whatever the input dtype
    pre_norm: bool  # CLIP's ln_pre after the embeddings
    patch_bias: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mlp_ratio: float = 4.0
    layout: str = "openai"  # the key names of the family's original release ("openai" or "timm"): AIM's decay rule
    family: str = "clip"
    mlp: str = "plain"  # plain fc1-act-fc2; swiglu_packed: fc1 -> [x1; x2] -> act(x1) * x2 (DINOv2-g);
    # swiglu_subln: act(fc1_g x) * fc1_x x -> LayerNorm -> fc2 (EVA02)
    mlp_hidden: int | None = None  # explicit hidden width (SwiGLU rows); None: width * mlp_ratio
    class_token: bool = True
    registers: int = 0  # register / storage tokens after the class token, without position (DINOv2-reg, DINOv3)
    pos_embed: str = "cls"  # learned absolute positions: "cls" 1 + HW, "patches" HW, "none" (RoPE only)
    pos_resize: str = "bicubic_aa"  # how the family's own code resamples its positions (vit.resize_pos_embed)
    layer_scale: bool = False  # x + gamma * f(x) (DINOv2, DINOv3)
    qkv_bias: str = "qkv"  # "qkv", or "qv": no key bias (kept as zeros: softmax ignores a key bias)
    attn_norm: bool = False  # LayerNorm before the attention's output projection (EVA02's sub-LN)
    rope: str | None = None  # 2D rotary positions on q and k: "eva02", "pe", "dinov3" (models/rope.py)
    rope_grid: int = 0  # the grid the rotary table was built for (EVA02, PE)
    attn_pool: int = 0  # heads of the pretrained attention-pooling head (SigLIP's MAP, PE's attn_pool); 0: none
    feature: str = "cls"  # the per-frame feature by default: "cls", "pool" (the pooling head), "mean" (of patches)
    licence: str = "MIT"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def prefix(self) -> int:
        """Tokens before the patches: the class token and the registers."""
        return int(self.class_token) + self.registers

    @property
    def num_tokens(self) -> int:
        return self.grid**2 + self.prefix

    @property
    def hidden(self) -> int:
        return self.mlp_hidden or int(self.width * self.mlp_ratio)


@dataclass(frozen=True)
class Weights:
    """A published image checkpoint: which backbone row it fits, where it lives, its sha256 when published.
    ``packaged`` weights ship inside the vidapter package (a path relative to it) and need no download."""

    backbone: str
    url: str
    sha256: str | None = None
    packaged: str | None = None
    companions: tuple[str, ...] = ()  # files of the same repository a loader also reads (SigLIP's spiece.model)

    @property
    def filename(self) -> str:
        """The cache's name for the file: hub repositories name many files alike, so theirs carry the repository."""
        base = self.url.rsplit("/", 1)[-1]
        if "huggingface.co/" in self.url:
            return self.url.split("huggingface.co/")[1].split("/resolve/")[0].replace("/", "--") + "--" + base
        return base

    def companion(self, name: str) -> tuple[str, str]:
        """(address, cache file name) of the file ``name`` beside the weights in their repository."""
        return self.url.rsplit("/", 1)[0] + "/" + name, self.filename.rsplit("--", 1)[0] + "--" + name


def hub(repo: str, file: str = "model.safetensors") -> str:
    """The address of a file of a Hugging Face hub repository."""
    return f"https://huggingface.co/{repo}/resolve/main/{file}"


@dataclass(frozen=True)
class Family:
    """One image family. ``rows``: its backbone rows by name (their ``ViTFacts.family`` is ``name``); ``tiny``: rows
    of the same structure at test size; ``weights``: its published names (``timm:``, ``hf:``, ``open_clip:``, the
    family's own prefix) and the row each loads into; ``layouts``: the checkpoint layouts its files come in;
    ``timm_architectures``: a regular expression of the timm architecture names of its models; ``gelu_variants``: its
    models exist with QuickGELU and with exact GELU on the same structure (OpenAI CLIP and its open_clip retrainings),
    so the metadata of a file, where it says which, must agree with the row; ``text``: the text tower beside a row's
    image tower in its releases (CLIP-style families), by row name."""

    name: str
    about: str
    rows: dict[str, ViTFacts]
    tiny: dict[str, ViTFacts] = field(default_factory=dict)
    weights: dict[str, Weights] = field(default_factory=dict)
    layouts: tuple[str, ...] = ()
    timm_architectures: str | None = None
    gelu_variants: bool = False
    text: dict[str, TextFacts] = field(default_factory=dict)  # rows whose releases hold a text tower: its facts


FAMILIES: dict[str, Family] = {}
BACKBONES: dict[str, ViTFacts] = {}  # every family's rows in registration order, then every family's tiny rows
WEIGHTS: dict[str, Weights] = {}  # every published name, family by family
TEXT_TOWERS: dict[str, TextFacts] = {}  # the rows whose releases hold a text tower, and its facts


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Add ``family``: its rows join ``BACKBONES`` and its weights ``WEIGHTS``. A row or weight name another family
    has is refused (``replace=True`` redefines a family of the same name)."""
    if family.name in FAMILIES and not replace:
        raise ValueError(f"a family named {family.name!r} is registered already (replace=True redefines it)")
    others = [f for n, f in FAMILIES.items() if n != family.name]
    rows = {**family.rows, **family.tiny}
    for kind, mine, theirs in (("backbone row", rows, {r for f in others for r in {**f.rows, **f.tiny}}),
                               ("weights name", family.weights, {w for f in others for w in f.weights})):  # fmt: skip
        clash = sorted(set(mine) & theirs)
        if clash:
            raise ValueError(f"family {family.name!r}: {kind} {clash[0]!r} is another family's")
    wrong = sorted(name for name, facts in rows.items() if facts.family != family.name)
    if wrong:
        raise ValueError(f"family {family.name!r}: row {wrong[0]!r} says family {rows[wrong[0]].family!r}")
    strays = sorted(set(family.text) - set(rows))
    if strays:
        raise ValueError(f"family {family.name!r}: a text tower for {strays[0]!r}, none of its rows")
    unknown = sorted(w for w, spec in family.weights.items() if spec.backbone not in rows)
    if unknown:
        row = family.weights[unknown[0]].backbone
        raise ValueError(f"family {family.name!r}: weights {unknown[0]!r} load into {row!r}, none of its rows")
    FAMILIES[family.name] = family
    BACKBONES.clear()
    BACKBONES.update({k: v for f in FAMILIES.values() for k, v in f.rows.items()})
    BACKBONES.update({k: v for f in FAMILIES.values() for k, v in f.tiny.items()})
    WEIGHTS.clear()
    WEIGHTS.update({k: v for f in FAMILIES.values() for k, v in f.weights.items()})
    TEXT_TOWERS.clear()
    TEXT_TOWERS.update({k: v for f in FAMILIES.values() for k, v in f.text.items()})
    return family

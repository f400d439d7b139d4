"""Named recipes as functions; derived recipes call and edit another.

Every AIM recipe follows the reference's config file line by line (configs/recognition/vit/*.py at the commit named in
docs/recipes.md, which lists each line, the field that reproduces it and the test that pins it, and the few stated
deviations). Dataset paths are the user's: set ``--data.train_list=...``.
"""

from __future__ import annotations

from collections.abc import Callable

from vidapter.adapters.evl import EVLConfig
from vidapter.adapters.st_adapter import STAdapterConfig
from vidapter.adapters.zeroi2v import ZeroI2VConfig
from vidapter.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig
from vidapter.errors import ConfigError

# Normalize(mean, std) of the reference configs (0-255 scale): CLIP's rounded otherwise than the backbone table's
REFERENCE_CLIP_NORM = ((122.769, 116.74, 104.04), (68.493, 66.63, 70.321))
REFERENCE_IMAGENET_NORM = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))


def _norm(table: tuple) -> dict:
    return {"mean": list(table[0]), "std": list(table[1])}


def k400_vitb16_8f() -> Config:
    """AIM ViT-B/16 (OpenAI CLIP) on Kinetics-400, 8 frames: s = 0.5, one temporal adapter."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8)
    # 8x16, views 8x3x1
    data = DataConfig(sampling="dense", frame_interval=16, test_clips=3, test_crops=1, **_norm(REFERENCE_CLIP_NORM))
    train = TrainConfig(eval_every=5)  # evaluation = dict(interval=5)
    return Config("k400_vitb16_8f", model, data, OptimConfig(), train)


def _frames(cfg: Config, name: str, frames: int) -> Config:
    """Same recipe at another T; dense clips keep their 128-frame span (8x16, 16x8, 32x4)."""
    cfg.name, cfg.model.num_frames = name, frames
    if cfg.data.sampling == "dense":
        cfg.data.frame_interval = 128 // frames
    return cfg


def _vitl14(cfg: Config, name: str, backbone_lr_mult: float = 0.1) -> Config:
    """ViT-L/14; the K400 and SSv2 configs add the custom key ``backbone`` with lr x0.1 (every tensor but the head's),
    the K700 and Diving-48 ones do not."""
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "clip_vitl14", "openai:ViT-L/14"
    cfg.optim.backbone_lr_mult = backbone_lr_mult
    return cfg


def k400_vitb16_16f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_16f", 16)


def k400_vitb16_32f() -> Config:
    return _frames(k400_vitb16_8f(), "k400_vitb16_32f", 32)


_JITTER = [0.5, 0.5, 0.5, 0.1]  # MMAction2 ColorJitter's defaults: the K400 ViT-L config's dict(type='ColorJitter')


def k400_vitl14_8f() -> Config:
    cfg = _vitl14(k400_vitb16_8f(), "k400_vitl14_8f")
    cfg.data.color_jitter = list(_JITTER)
    return cfg


def k400_vitl14_16f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_16f", 16)


def k400_vitl14_32f() -> Config:
    return _frames(k400_vitl14_8f(), "k400_vitl14_32f", 32)


def k700_vitb16_8f() -> Config:
    """Kinetics-700: test views T x 3 x 3."""
    cfg = k400_vitb16_8f()
    cfg.name, cfg.model.num_classes, cfg.data.test_crops = "k700_vitb16_8f", 700, 3
    return cfg


def k700_vitl14_8f() -> Config:
    """The K700 ViT-L config at 8 frames: no colour jitter and no backbone lr key there (unlike K400 ViT-L)."""
    return _vitl14(k700_vitb16_8f(), "k700_vitl14_8f", backbone_lr_mult=1.0)


def k700_vitl14_32f() -> Config:
    """vitclip_large_k700.py itself: 32x4 dense, views 32x3x3."""
    return _frames(k700_vitl14_8f(), "k700_vitl14_32f", 32)


def ssv2_vitb16_8f() -> Config:
    """Something-Something v2: 174 classes, s = 1.0, two temporal adapters (T_Adapter_in before T-MSA)."""
    cfg = k400_vitb16_8f()
    cfg.name = "ssv2_vitb16_8f"
    cfg.model.num_classes, cfg.model.aim.scale, cfg.model.aim.num_tadapter = 174, 1.0, 2
    # SlowFast's sequence segments, no flip, RandAugment(4, 7), erasing 0.25; views T x 1 x 3
    cfg.data = DataConfig(sampling="segments_seq", flip=0.0, randaugment=[4, 7], erasing=0.25, test_clips=1,
                          test_crops=3, **_norm(REFERENCE_CLIP_NORM))  # fmt: skip
    cfg.optim.label_smoothing, cfg.train.epochs = 0.1, 50
    return cfg


def ssv2_vitb16_16f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_16f", 16)


def ssv2_vitb16_32f() -> Config:
    return _frames(ssv2_vitb16_8f(), "ssv2_vitb16_32f", 32)


def ssv2_vitl14_8f() -> Config:
    """vitclip_large_sthv2.py, except two temporal adapters as the ViT-B config: the large file sets no num_tadapter
    (so one), but the paper's 50M trainable parameters for this model count two (docs/recipes.md)."""
    return _vitl14(ssv2_vitb16_8f(), "ssv2_vitl14_8f")


def diving48_vitb16_32f() -> Config:
    """Diving-48: 32 sequence segments, flip 0.5; views 32 x 1 x 3 (three crops, as the reference ViT-B config)."""
    cfg = _frames(k400_vitb16_8f(), "diving48_vitb16_32f", 32)
    cfg.model.num_classes = 48
    cfg.data = DataConfig(sampling="segments_seq", flip=0.5, test_clips=1, test_crops=3, **_norm(REFERENCE_CLIP_NORM))
    cfg.train.epochs = 50
    return cfg


def diving48_vitl14_32f() -> Config:
    """ViT-L/14 on Diving-48: views 32 x 1 x 1; no backbone lr key in its config."""
    cfg = _vitl14(diving48_vitb16_32f(), "diving48_vitl14_32f", backbone_lr_mult=1.0)
    cfg.data.test_crops = 1
    return cfg


def _in21k(cfg: Config, name: str) -> Config:
    """vit_imagenet_{k400,ssv2}.py: the same recipe on the IN-21K ViT-B/16 with ImageNet normalisation."""
    cfg.name, cfg.model.backbone, cfg.model.pretrained = name, "in21k_vitb16", "timm:vit_base_patch16_224_in21k"
    cfg.data.mean, cfg.data.std = _norm(REFERENCE_IMAGENET_NORM).values()
    return cfg


def k400_in21k_vitb16_8f() -> Config:
    return _in21k(k400_vitb16_8f(), "k400_in21k_vitb16_8f")


def ssv2_in21k_vitb16_8f() -> Config:
    return _in21k(ssv2_vitb16_8f(), "ssv2_in21k_vitb16_8f")


# The image families at base size: (preset stem, backbone row, published weights, frame size). Each recipe is AIM's
# K400 or SSv2 ViT-B/16 recipe with the family's backbone, its own input mean/std and native frame size (224 for
# DINOv2, whose 518 px positions are resampled as its own code does).
FAMILIES = {
    "laion2b_b16": ("laion2b_vitb16", "open_clip:ViT-B-16/laion2b_s34b_b88k", None),
    "siglip_b16": ("siglip_vitb16", "timm:vit_base_patch16_siglip_224.webli", None),
    "siglip2_b16": ("siglip2_vitb16", "timm:vit_base_patch16_siglip_224.v2_webli", None),
    "dinov2_b14": ("dinov2_vitb14", "dinov2:dinov2_vitb14", 224),
    "dinov3_b16": ("dinov3_vitb16", "timm:vit_base_patch16_dinov3.lvd1689m", None),
    "pe_core_b16": ("pe_core_vitb16", "pe:PE-Core-B16-224", None),
    "eva02_b16": ("eva02_clip_vitb16", "eva:EVA02_CLIP_B_psz16_s8B", None),
}


def _family(cfg: Config, dataset: str, family: str) -> Config:
    backbone, weights, size = FAMILIES[family]
    cfg.name = f"{dataset}_{family}_8f"
    cfg.model.backbone, cfg.model.pretrained, cfg.model.image_size = backbone, weights, size
    cfg.data.mean = cfg.data.std = None  # the backbone row's own normalisation
    return cfg


def _family_presets() -> dict[str, Callable[[], Config]]:
    base = {"k400": k400_vitb16_8f, "ssv2": ssv2_vitb16_8f}
    return {f"{d}_{f}_8f": (lambda d=d, f=f: _family(base[d](), d, f)) for f in FAMILIES for d in base}


def synthetic() -> Config:
    """AIM on the synthetic dataset (``vidapter data synth data/synthetic``) with the demo image ViT that vidapter
    pretrained on synthetic images (``vidapter:demo-vit``, shipped in the package), on CPU in minutes."""
    model = ModelConfig(backbone="demo_vit", pretrained="vidapter:demo-vit", num_frames=8, num_classes=19,
                        drop_path_rate=0.0, dropout=0.0)  # fmt: skip
    data = DataConfig(
        root="data/synthetic",
        train_list="data/synthetic/train.txt",
        val_list="data/synthetic/val.txt",
        test_list="data/synthetic/test.txt",
        class_names="data/synthetic/classes.txt",
        sampling="uniform",
        size=32,
        short_side=36,
        test_short_side=32,
        area=[0.5, 1.0],
        flip=0.0,  # left/right are classes
        test_crops=1,
        # decoded clips stay in memory (128 MB): after the first epoch one loader process only augments, which
        # leaves the model both cores of a 2-core machine (epochs 1.5x faster there, the same clips)
        workers=1,
        cache_decoded=True,
    )
    # A 10x learning rate on the zero-initialised temporal embedding makes order sensitivity start early; vidapter's
    # own decay groups and per-step cosine (short runs: per-epoch steps of the rate would be coarse)
    optim = OptimConfig(lr=1e-3, warmup_epochs=0.5, weight_decay=0.05, temporal_embed_lr_mult=10.0,
                        decay_groups="norm_bias_embed", schedule="step_cosine")  # fmt: skip
    train = TrainConfig(epochs=6, batch_size=16, amp="none", device="cpu", ckpt_every=200, log_every=20)
    return Config("synthetic", model, data, optim, train)


# Other methods' published recipes (their official code; docs/recipes.md lists what each line reproduces and where
# vidapter deviates). Batch sizes are per process for 8 processes; learning rates are the recipes' for their batch.
CLIP_NORM = ((122.77, 116.75, 104.09), (68.50, 66.63, 70.32))  # CLIP's mean/std x 255, as these codebases use them


def st_adapter_k400_vitb16_8f() -> Config:
    """ST-Adapter 12x384 (linziyi96/st-adapter): one adapter before each MLP, 8x16 dense clips, short side jittered to
    224-258 and a random 224 crop, flip; AdamW lr 7.5e-4 (batch 192), wd 0.01 except biases, 2 warm-up epochs from 0,
    per-step cosine, 12 epochs; views 8 x 3 x 1."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8, method="st_adapter",
                        adapters=[], sections={"st_adapter": STAdapterConfig(width=384, positions=["mlp"])},
                        drop_path_rate=0.0)  # fmt: skip
    data = DataConfig(sampling="dense", frame_interval=16, short_side_range=[224, 258], flip=0.5, test_clips=3,
                      test_crops=1, **_norm(CLIP_NORM))  # fmt: skip
    optim = OptimConfig(lr=7.5e-4, weight_decay=0.01, decay_groups="bias", schedule="step_cosine", warmup_epochs=2,
                        warmup_start=0.0)  # fmt: skip
    return Config("st_adapter_k400_vitb16_8f", model, data, optim, TrainConfig(epochs=12, batch_size=24))


def st_adapter_ssv2_vitb16_8f() -> Config:
    """ST-Adapter 24x384 on SSv2: adapters before attention and MLP, 8 uniform segments, RandAugment(4, 7) and a
    random resized crop, no flip; lr 1e-3 (batch 256), 50 epochs; views 8 x 1 x 3."""
    cfg = st_adapter_k400_vitb16_8f()
    cfg.name, cfg.model.num_classes = "st_adapter_ssv2_vitb16_8f", 174
    cfg.model.st_adapter.positions = ["attn", "mlp"]
    cfg.data = DataConfig(sampling="uniform", flip=0.0, randaugment=[4, 7], randaugment_impl="torchvision",
                          test_clips=1, test_crops=3, **_norm(CLIP_NORM))  # fmt: skip
    cfg.optim.lr, cfg.train.epochs, cfg.train.batch_size = 1e-3, 50, 32
    return cfg


def evl_k400_vitb16_8f() -> Config:
    """EVL (OpenGVLab/efficient-video-recognition), 4 decoder layers on the last 4 blocks: 8x16 dense clips,
    RandAugment(4, 7) and a random resized crop, no flip; AdamW lr 4e-4 (batch 256), wd 0.05 on every tensor,
    cosine per step with no warm-up; 50,000 steps, about 53 passes over K400; views 8 x 3 x 1."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8, method="evl",
                        adapters=[], sections={"evl": EVLConfig(layers=4)}, drop_path_rate=0.0)  # fmt: skip
    data = DataConfig(sampling="dense", frame_interval=16, flip=0.0, randaugment=[4, 7],
                      randaugment_impl="torchvision", test_clips=3, test_crops=1, **_norm(CLIP_NORM))  # fmt: skip
    optim = OptimConfig(lr=4e-4, weight_decay=0.05, decay_groups="none", schedule="step_cosine", warmup_epochs=0)
    return Config("evl_k400_vitb16_8f", model, data, optim, TrainConfig(epochs=53, batch_size=32))


def _evl_views(cfg: Config, name: str, frames: int, interval: int) -> Config:
    """EVL's 16x16 and 32x8 clips are tested with 3 crops x 1 clip (8x16: 1 crop x 3 clips)."""
    cfg.name, cfg.model.num_frames, cfg.data.frame_interval = name, frames, interval
    cfg.data.test_clips, cfg.data.test_crops = 1, 3
    return cfg


def evl_k400_vitb16_16f() -> Config:
    return _evl_views(evl_k400_vitb16_8f(), "evl_k400_vitb16_16f", 16, 16)


def evl_k400_vitb16_32f() -> Config:
    return _evl_views(evl_k400_vitb16_8f(), "evl_k400_vitb16_32f", 32, 8)


def evl_k400_vitl14_8f() -> Config:
    cfg = evl_k400_vitb16_8f()
    cfg.name, cfg.model.backbone, cfg.model.pretrained = "evl_k400_vitl14_8f", "clip_vitl14", "openai:ViT-L/14"
    return cfg


def evl_k400_vitl14_32f() -> Config:
    """The released scripts split the batch in 4 accumulation steps at 32 frames."""
    cfg = _evl_views(evl_k400_vitl14_8f(), "evl_k400_vitl14_32f", 32, 8)
    cfg.train.batch_size, cfg.train.accum_steps = 8, 4
    return cfg


def evl_ssv2_vitb16_8f() -> Config:
    """EVL on SSv2 from the setting its authors stated (12 decoder layers on all 12 blocks, TSN sampling, 3 test
    crops, 30,000 steps at batch 256, about 45 passes): not from released code, which has no SSv2 recipe."""
    cfg = evl_k400_vitb16_8f()
    cfg.name, cfg.model.num_classes, cfg.model.evl.layers = "evl_ssv2_vitb16_8f", 174, 12
    cfg.data.sampling, cfg.data.test_clips, cfg.data.test_crops = "uniform", 1, 3
    cfg.train.epochs = 45
    return cfg


def clip_zero_shot() -> Config:
    """Zero-shot classification with a CLIP-style model and your class names, no training: the frozen image tower on
    8 segment-centre frames, ViFi-CLIP's video embedding (the frames' projected mean, one norm), CLIP's 28 Kinetics
    prompts averaged (model.templates), one centre crop of 224 after a 256 short side (the crop of ViFi-CLIP's
    evaluation), the backbone's own mean/std. ``vidapter predict CLIP VIDEO --labels ...`` and ``vidapter eval CLIP
    --zero-shot`` use it; another CLIP replaces the backbone and its native size the crop."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8, adapters=[], head="text",
                        head_train=False, dropout=0.0, drop_path_rate=0.0)  # fmt: skip
    data = DataConfig(sampling="uniform", test_clips=1, test_crops=1, test_short_side=256)
    return Config("clip_zero_shot", model, data, OptimConfig(), TrainConfig())


def vifi_zero_shot_32f() -> Config:
    """ViFi-CLIP's evaluation of zero-shot CLIP (configs/zero_shot/eval with ``ZS_EVAL``): 32 segment-centre frames,
    1 clip x 1 centre crop, the bare class name as the prompt (``{}``), ImageNet mean/std on 0-255 pixels as its
    pipeline normalises (not CLIP's)."""
    cfg = clip_zero_shot()
    cfg.name, cfg.model.num_frames, cfg.model.templates = "vifi_zero_shot_32f", 32, ["{}"]
    cfg.data.mean, cfg.data.std = list(REFERENCE_IMAGENET_NORM[0]), list(REFERENCE_IMAGENET_NORM[1])
    return cfg


def vifi_k400_vitb16_16f() -> Config:
    """ViFi-CLIP fully supervised on Kinetics-400 (configs/fully_supervised/k400/16_16_vifi_clip.yaml): both towers
    fine-tuned, 16 TSN segments, the prompt "a photo of a {}."; AdamW lr 2.2e-5 for the batch of 512 (4 per GPU x 16
    accumulation steps x 8 GPUs), betas (0.9, 0.98), weight decay 0.001 on every tensor, 5 warm-up epochs from 0,
    cosine per step to lr/100, 30 epochs; MixUp 0.8 / CutMix 1.0 (one per batch), label smoothing 0.1; ImageNet
    mean/std on 0-255 pixels; colour jitter (0.4, 0.4, 0.2, 0.1). docs/recipes.md lists the stated deviations."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=16, method="vifi", adapters=[],
                        dropout=0.0, drop_path_rate=0.0)  # fmt: skip
    data = DataConfig(sampling="uniform", test_clips=1, test_crops=3, short_side=256, test_short_side=224,
                      area=[0.4356, 1.0], color_jitter=[0.4, 0.4, 0.2, 0.1],
                      **_norm(REFERENCE_IMAGENET_NORM))  # fmt: skip
    optim = OptimConfig(lr=2.2e-5, betas=[0.9, 0.98], weight_decay=0.001, decay_groups="none",
                        schedule="step_cosine", warmup_epochs=5, warmup_start=0.0, final_lr=0.01, label_smoothing=0.1,
                        mixup=0.8, cutmix=1.0)  # fmt: skip
    train = TrainConfig(epochs=30, batch_size=4, accum_steps=16)
    return Config("vifi_k400_vitb16_16f", model, data, optim, train)


def _vifi_setting(name: str, frames: int, lr: float, epochs: int, accum: int) -> Config:
    """The other ViFi-CLIP settings change frames, lr, epochs and batch, and test one centre view."""
    cfg = vifi_k400_vitb16_16f()
    cfg.name, cfg.model.num_frames, cfg.optim.lr, cfg.train.epochs = name, frames, lr, epochs
    cfg.train.accum_steps, cfg.data.test_crops = accum, 1
    return cfg


def vifi_k400_zs_vitb16_32f() -> Config:
    """ViFi-CLIP trained on K400 for zero-shot transfer (configs/zero_shot/train/k400/16_16_vifi_clip.yaml, 32
    frames despite its name): lr 8e-6 for the batch of 256, 10 epochs; evaluate with --zero-shot-style names."""
    return _vifi_setting("vifi_k400_zs_vitb16_32f", 32, 8e-6, 10, 8)


def vifi_base2novel_vitb16_32f() -> Config:
    """ViFi-CLIP base-to-novel (configs/base2novel/finetuning_base2novel/*/16_32_vifi_clip_s*.yaml): 16 shots of
    each base class, lr 2e-6 for the batch of 64, 11 epochs; novel classes evaluated by name (eval --novel)."""
    return _vifi_setting("vifi_base2novel_vitb16_32f", 32, 2e-6, 11, 2)


def vifi_fewshot_vitb16_32f() -> Config:
    """ViFi-CLIP few-shot (configs/few_shot/finetuning_few_shot/*/16_32_vifi_clip_{K}_shot.yaml): K shots of every
    class, lr 2e-6 for the batch of 64, 50 epochs, from CLIP."""
    return _vifi_setting("vifi_fewshot_vitb16_32f", 32, 2e-6, 50, 2)


def zeroi2v_k400_vitb16_8f() -> Config:
    """ZeroI2V (MCG-NJU/ZeroI2V CLIP-B_k400_8x16x1): linear adapters (s = 0.5, dropout 0.1, two per side), heads 0
    and 1 shifted to t - 1 and t + 1; 8x16 dense clips, RandAugment(4, 7), random resized crop, flip; AdamW lr 3e-4
    (batch 64), wd 0.05 but not on embeddings and norms, warm-up 2.5 epochs from 0.1, cosine per epoch, 40 epochs;
    views 8 x 3 x 1. Merge with ``vidapter export --merge``."""
    model = ModelConfig(backbone="clip_vitb16", pretrained="openai:ViT-B/16", num_frames=8, method="zeroi2v",
                        adapters=[], sections={"zeroi2v": ZeroI2VConfig(scale=0.5, num_tadapter=2, dropout=0.1)},
                        head_shifts=[-1, 1], drop_path_rate=0.0)  # fmt: skip
    data = DataConfig(sampling="dense", frame_interval=16, randaugment=[4, 7], randaugment_impl="torchvision",
                      test_clips=3, test_crops=1, **_norm(REFERENCE_CLIP_NORM))  # fmt: skip
    optim = OptimConfig(lr=3e-4, weight_decay=0.05, decay_groups="norms_embeds", warmup_epochs=2.5)
    return Config("zeroi2v_k400_vitb16_8f", model, data, optim, TrainConfig(epochs=40))


def zeroi2v_ssv2_vitb16_16f() -> Config:
    """CLIP-B_sthv2_u16: 16 uniform segments, s = 1, no adapter dropout, heads 0-3 at -1, +1, -2, +2, erasing 0.25,
    label smoothing 0.1, 50 epochs; views 16 x 1 x 3. The official flip with a left/right label map is left out."""
    cfg = zeroi2v_k400_vitb16_8f()
    cfg.name, cfg.model.num_classes, cfg.model.num_frames = "zeroi2v_ssv2_vitb16_16f", 174, 16
    cfg.model.zeroi2v.scale, cfg.model.zeroi2v.dropout, cfg.model.head_shifts = 1.0, 0.0, [-1, 1, -2, 2]
    cfg.data = DataConfig(sampling="uniform", flip=0.0, randaugment=[4, 7], randaugment_impl="torchvision",
                          erasing=0.25, test_clips=1, test_crops=3, **_norm(REFERENCE_CLIP_NORM))  # fmt: skip
    cfg.optim.label_smoothing, cfg.train.epochs, cfg.train.batch_size = 0.1, 50, 4
    return cfg


def zeroi2v_k400_vitl14_8f() -> Config:
    """CLIP-L_k400_8x16x1: heads 0-1 at t - 1, heads 2-3 at t + 1."""
    cfg = zeroi2v_k400_vitb16_8f()
    cfg.name, cfg.model.backbone, cfg.model.pretrained = "zeroi2v_k400_vitl14_8f", "clip_vitl14", "openai:ViT-L/14"
    cfg.model.head_shifts = [-1, -1, 1, 1]
    return cfg


PRESETS: dict[str, Callable[[], Config]] = {
    f.__name__: f
    for f in (
        k400_vitb16_8f,
        k400_vitb16_16f,
        k400_vitb16_32f,
        k400_vitl14_8f,
        k400_vitl14_16f,
        k400_vitl14_32f,
        k700_vitb16_8f,
        k700_vitl14_8f,
        k700_vitl14_32f,
        ssv2_vitb16_8f,
        ssv2_vitb16_16f,
        ssv2_vitb16_32f,
        ssv2_vitl14_8f,
        diving48_vitb16_32f,
        diving48_vitl14_32f,
        k400_in21k_vitb16_8f,
        ssv2_in21k_vitb16_8f,
        st_adapter_k400_vitb16_8f,
        st_adapter_ssv2_vitb16_8f,
        evl_k400_vitb16_8f,
        evl_k400_vitb16_16f,
        evl_k400_vitb16_32f,
        evl_k400_vitl14_8f,
        evl_k400_vitl14_32f,
        evl_ssv2_vitb16_8f,
        zeroi2v_k400_vitb16_8f,
        zeroi2v_ssv2_vitb16_16f,
        zeroi2v_k400_vitl14_8f,
        synthetic,
        clip_zero_shot,
        vifi_zero_shot_32f,
        vifi_k400_vitb16_16f,
        vifi_k400_zs_vitb16_32f,
        vifi_base2novel_vitb16_32f,
        vifi_fewshot_vitb16_32f,
    )
}
PRESETS.update(_family_presets())


def list_presets() -> list[str]:
    """The names ``get_preset`` accepts (``vidapter presets`` prints them with their counts)."""
    return list(PRESETS)


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()

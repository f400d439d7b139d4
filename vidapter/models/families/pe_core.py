"""Perception Encoder Core (Bolya et al., 2025): OpenAI's layout with exact GELU, 2D RoPE beside the learned
positions, an attention pool (8 heads) after ln_post. Meta's ``.pt`` files, timm's, open_clip's timm towers."""

from __future__ import annotations

from dataclasses import replace

from vidapter.models.family import HALF, Family, ViTFacts, Weights, hub, register_family


def pe_core_facts(width: int, depth: int, heads: int, patch: int, size: int) -> ViTFacts:
    return ViTFacts(width, depth, heads, patch, size, "gelu", 1e-5, False, True, False, HALF, HALF, family="pe_core",
                    pos_resize="bilinear", rope="pe", rope_grid=size // patch, attn_pool=8,
                    licence="Apache-2.0")  # fmt: skip


PE_CORE = register_family(Family(
    name="pe_core",
    about="Perception Encoder Core",
    rows={
        "pe_core_vitb16": pe_core_facts(768, 12, 12, 16, 224),
        "pe_core_vitl14_336": pe_core_facts(1024, 24, 16, 14, 336),
    },
    tiny={"tiny_pe_core": replace(pe_core_facts(64, 2, 4, 8, 32), attn_pool=8)},
    weights={
        "timm:vit_pe_core_base_patch16_224.fb": Weights("pe_core_vitb16",
                                                        hub("timm/vit_pe_core_base_patch16_224.fb")),
        "timm:vit_pe_core_large_patch14_336.fb": Weights("pe_core_vitl14_336",
                                                         hub("timm/vit_pe_core_large_patch14_336.fb")),
        **{f"pe:{name}": Weights(row, hub(f"facebook/{name}", f"{name}.pt"))
           for name, row in (("PE-Core-B16-224", "pe_core_vitb16"), ("PE-Core-L14-336", "pe_core_vitl14_336"))},
    },
    layouts=("pe", "timm", "open_clip_timm"),
    timm_architectures=r"vit_pe_core_.+",
))  # fmt: skip

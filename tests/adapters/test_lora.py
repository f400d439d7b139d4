"""LoRA (model.method=lora) against Hugging Face PEFT's LoRA on a timm ViT with random weights, and its invariants:
identity at initialisation, gradients only into the trainable set, the counts, every recompute mode, the merge."""

from __future__ import annotations

import pytest
import torch
from peers import randomize_, timm_vit

from vidapter.adapters.lora import LoRA, apply_lora, lora_modules
from vidapter.classifier import build_model
from vidapter.config import ModelConfig
from vidapter.models.pretrained import load_backbone
from vidapter.models.vit import build_vit, set_recompute
from vidapter.presets import get_preset
from vidapter.summary import model_info


def _cfg(**kw) -> ModelConfig:
    base = dict(
        backbone="tiny_clip", num_frames=4, num_classes=5, method="lora", adapters=[], sections={"lora": {"r": 4}}
    )
    return ModelConfig(**{**base, **kw})


@torch.no_grad()
def _random_lora_(model, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    for lora in lora_modules(model).values():
        lora.lora_B.weight.copy_(0.1 * torch.randn(lora.lora_B.weight.shape, generator=g))
    return model


def test_peft_parity_on_a_timm_vit(tmp_path, images):
    """The same base weights and LoRA weights give the same image features as PEFT's LoraModel around timm's ViT
    (timm's fused qkv: one A and one B for q, k and v, as PEFT does it)."""
    from peft import LoraConfig, get_peft_model

    peer = timm_vit(clip_style=True)
    torch.save(peer.state_dict(), tmp_path / "vit.pth")
    with torch.no_grad():
        base = peer.forward_head(peer.forward_features(images), pre_logits=True)
    targets = r".*blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))"  # not patch_embed.proj
    lora_peer = get_peft_model(peer, LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0))
    with torch.no_grad():
        for name, p in lora_peer.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn_like(p))
    vit = build_vit("tiny_clip").eval()
    load_backbone(vit, str(tmp_path / "vit.pth"))
    names = apply_lora(vit, r=4, alpha=8)
    peft_sd = {k.removeprefix("base_model.model.").replace(".default", ""): v for k, v in lora_peer.state_dict().items()
               if "lora_" in k}  # fmt: skip
    ours = {n.replace(".delta", ""): n for n in names}
    assert set(ours) == set(peft_sd)
    vit.load_state_dict({ours[k]: v for k, v in peft_sd.items()}, strict=False)
    lora_peer.eval()
    with torch.no_grad():
        want = lora_peer.base_model.model.forward_head(lora_peer.base_model.model.forward_features(images),
                                                       pre_logits=True)  # fmt: skip
        torch.testing.assert_close(vit(images), want, atol=1e-5, rtol=0)
    assert (want - base).abs().max() > 1e-2  # the LoRA updates are in both


def test_identity_at_init_and_trainable_set(video):
    plain = build_model(_cfg(method="aim", adapters=[], temporal_embed=True))
    lora = build_model(_cfg())
    randomize_(plain.backbone)
    lora.load_state_dict(plain.state_dict(), strict=False)
    lora.head.load_state_dict(plain.head.state_dict())
    plain.eval(), lora.eval()
    with torch.no_grad():
        torch.testing.assert_close(lora(video), plain(video), atol=0, rtol=0)  # B = 0
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    loras = {n for n in trainable if ".delta.lora_" in n}
    assert trainable - loras == {"temporal_embed", "backbone.norm.weight", "backbone.norm.bias", "head.fc.weight",
                                 "head.fc.bias"}  # fmt: skip
    assert len(loras) == 2 * 4 * 2  # A and B, 4 targets, 2 blocks
    lora.train()
    _random_lora_(lora)
    lora(video).sum().backward()
    assert all(p.grad is not None for n, p in lora.named_parameters() if n in trainable)
    assert all(p.grad is None for n, p in lora.named_parameters() if n not in trainable)


@pytest.mark.parametrize(
    "targets, r, trainable",
    [(["qkv"], 4, 147_456), (["qkv", "proj"], 16, 884_736), (["qkv", "proj", "fc1", "fc2"], 8, 1_179_648)],
)
def test_counts_at_vitb16(targets, r, trainable):
    """The LoRA parameter counts of ViT-B/16 (12 blocks) computed from the shapes."""
    cfg = get_preset("k400_vitb16_8f")
    cfg.model.method, cfg.model.adapters, cfg.model.lora.r, cfg.model.lora.targets = "lora", [], r, targets
    assert model_info(cfg)["params"]["adapters"] == trainable


def test_every_recompute_mode_gives_the_same_gradients(video):
    """LoRA on fc1 is part of the layer: the mode that recomputes the MLP's hidden layer must not bypass it."""
    grads = {}
    for mode in ("none", "pointwise", "mlp"):
        model = _random_lora_(randomize_(build_model(_cfg(adapters=["temporal"]))))
        set_recompute(model, mode)
        model.train()
        torch.manual_seed(0)
        model(video).pow(2).sum().backward()
        grads[mode] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    for mode in ("pointwise", "mlp"):
        for n, g in grads["none"].items():
            torch.testing.assert_close(grads[mode][n], g, atol=1e-6, rtol=1e-5, msg=f"{mode} {n}")


def test_merged_weight_equals_the_update():
    lora = LoRA(6, 5, r=2, alpha=4, dropout=0.0).double()
    with torch.no_grad():
        lora.lora_B.weight.normal_()
    x = torch.randn(3, 6, dtype=torch.float64)
    torch.testing.assert_close(x @ lora.merged_weight().double().T, lora(x), atol=1e-6, rtol=0)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="model.lora.targets must be a non-empty subset"):
        build_model(_cfg(sections={"lora": {"targets": ["qkv", "out_proj"]}}))
    with pytest.raises(
        ValueError, match="model.method must be one of aim, lora, zeroi2v, st_adapter, evl, vifi, got 'x'"
    ):
        build_model(_cfg(method="x"))


@pytest.mark.parametrize("alpha", [2.0, 4.0])  # scaling alpha / r = 0.5 and 1
def test_merge_per_layer_in_float64(alpha):
    from vidapter.adapters.lora import LoRALinear, merge_lora_
    from vidapter.models.vit import Linear, rebase

    holder = torch.nn.Sequential(rebase(Linear(6, 5).double(), LoRALinear))
    holder[0].delta = LoRA(6, 5, r=4, alpha=alpha).double()
    with torch.no_grad():
        holder[0].delta.lora_B.weight.normal_()
    x = torch.randn(3, 6, dtype=torch.float64)
    before = holder(x)
    assert merge_lora_(holder) == 1 and type(holder[0]) is Linear and not hasattr(holder[0], "delta")
    torch.testing.assert_close(holder(x), before, atol=1e-10, rtol=0)


def test_export_merge_gives_a_plain_model_with_the_same_logits(tmp_path, video, capsys):
    from vidapter.classifier import from_pretrained, save_pretrained
    from vidapter.cli import main
    from vidapter.config import Config

    cfg = Config("lora", _cfg(adapters=["temporal"]))
    model = _random_lora_(randomize_(build_model(cfg.model))).eval()
    save_pretrained(model, cfg, tmp_path / "lora")
    assert main(["export", str(tmp_path / "lora"), "--merge", "--model-dir", str(tmp_path / "merged")]) == 0
    assert "merged the lora model's adapters into its frozen weights" in capsys.readouterr().out
    merged, merged_cfg, _ = from_pretrained(tmp_path / "merged")
    assert merged_cfg.model.method == "aim" and merged_cfg.model.adapters == ["temporal"]
    assert not lora_modules(merged) and any("t_adapter" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged.eval()(video), model(video), atol=1e-5, rtol=0)
    assert main(["export", str(tmp_path / "merged"), "--merge", "--model-dir", str(tmp_path / "again")]) == 2
    assert "nothing to merge: model.method is 'aim'" in capsys.readouterr().err

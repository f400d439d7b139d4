"""Pretrain a tiny text tower for the demo image ViT on captions of synthetic images, the image tower locked (LiT:
Zhai et al., CVPR 2022): CLIP's contrastive loss between the frozen ViT's projected class tokens and the captions'
text embeddings, captions that read the same counted as the same target.

    python -m vidapter.demo.pretrain_text

adds the text tower, image projection and logit scale (OpenAI's CLIP names, fp16) to the demo ViT's file in the
package, whose image tensors stay as they are, so that ``vidapter:demo-vit`` is a CLIP: ``vidapter predict
vidapter:demo-vit clip.mp4 --labels stripes,rings`` and ``vidapter demo --zero-shot`` use it. Its zero-shot accuracy
on the images' kind and colour is written beside it as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from vidapter.demo.images import HUES, TASKS, TEXTURE_WORDS, captions, make_images
from vidapter.demo.pretrain import _normalise
from vidapter.models.backbones import TEXT_TOWERS
from vidapter.models.pretrained import load_backbone
from vidapter.models.text import ClipText
from vidapter.models.tokenizer import tokenizer
from vidapter.models.vit import build_vit

DEMO_FILE = Path(__file__).with_name("demo_vit.safetensors")
KIND_PROMPTS = ("an object", "a clock hand", *TEXTURE_WORDS)


def to_openai_names(clip: ClipText) -> dict[str, torch.Tensor]:
    """The text side in the names of OpenAI's CLIP files (what ``load_clip_text`` reads)."""
    blocks = {"attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
              "attn.proj": "attn.out_proj", "norm1": "ln_1", "norm2": "ln_2", "mlp.fc1": "mlp.c_fc",
              "mlp.fc2": "mlp.c_proj"}  # fmt: skip
    out = {}
    for name, t in clip.state_dict().items():
        if name.startswith("text.blocks."):
            i, rest = name[len("text.blocks.") :].split(".", 1)
            for ours, theirs in blocks.items():
                if rest.startswith(ours):
                    rest = theirs + rest[len(ours) :]
                    break
            key = f"transformer.resblocks.{i}.{rest}"
        else:
            key = {"text.token_embedding.weight": "token_embedding.weight", "text.pos_embed": "positional_embedding",
                   "text.proj": "text_projection", "image_proj": "visual.proj", "logit_scale": "logit_scale",
                   "text.norm.weight": "ln_final.weight", "text.norm.bias": "ln_final.bias"}[name]  # fmt: skip
        out[key] = t.detach().half().contiguous()
    return out


@torch.no_grad()
def _features(vit, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([vit(images[i : i + 1000]) for i in range(0, len(images), 1000)])


@torch.no_grad()
def zero_shot_accuracy(clip: ClipText, feats: torch.Tensor, targets: np.ndarray) -> dict[str, float]:
    """The images' kind and colour, classified by prompts alone."""
    out = {}
    tok = tokenizer()
    image = F.normalize(clip.encode_image_features(feats), dim=-1)
    for task, prompts in (("kind", KIND_PROMPTS), ("hue", [f"a {h} thing" for h in HUES])):
        text = F.normalize(clip.encode_text(tok(list(prompts), context=clip.text.facts.context)), dim=-1)
        y = torch.from_numpy(targets[:, list(TASKS).index(task)])
        valid = y >= 0
        out[task] = float(((image @ text.T).argmax(-1) == y)[valid].float().mean())
    return out


def pretrain_text(n_train: int = 20000, n_test: int = 2000, epochs: int = 12, batch: int = 256, lr: float = 2e-3,
                  seed: int = 0) -> tuple[ClipText, dict]:  # fmt: skip
    torch.manual_seed(seed)
    vit = build_vit("demo_vit").eval()
    load_backbone(vit, "vidapter:demo-vit")
    facts = TEXT_TOWERS["demo_vit"]
    xtr, ytr = make_images(n_train, seed, vit.image_size)
    xte, yte = make_images(n_test, seed + 1, vit.image_size)
    start = time.time()
    ftr, fte = _features(vit, _normalise(xtr, vit.facts)), _features(vit, _normalise(xte, vit.facts))
    texts = captions(ytr, seed)
    unique = sorted(set(texts))
    index = {c: i for i, c in enumerate(unique)}
    ids = tokenizer()(unique, context=facts.context)
    cap = torch.tensor([index[c] for c in texts])
    clip = ClipText(facts, vit.width)
    with torch.no_grad():  # CLIP's initialisation of the new tensors
        torch.nn.init.normal_(clip.text.token_embedding.weight, std=0.02)
        torch.nn.init.normal_(clip.text.pos_embed, std=0.01)
        torch.nn.init.normal_(clip.text.proj, std=facts.width**-0.5)
        torch.nn.init.normal_(clip.image_proj, std=vit.width**-0.5)
    opt = torch.optim.AdamW(clip.parameters(), lr=lr, weight_decay=0.1)
    steps = epochs * (n_train // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        perm = torch.randperm(n_train)
        for i in range(n_train // batch):
            idx = perm[i * batch : (i + 1) * batch]
            c = cap[idx]
            image = F.normalize(clip.encode_image_features(ftr[idx]), dim=-1)
            text = F.normalize(clip.encode_text(ids[c]), dim=-1)
            logits = clip.logit_scale.exp().clamp(max=100) * image @ text.T
            same = (c[:, None] == c[None, :]).float()  # captions that read the same are the same target
            target = same / same.sum(1, keepdim=True)
            loss = 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                          + torch.sum(-target * logits.T.log_softmax(1), 1).mean())  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f} ({time.time() - start:.0f}s)", flush=True)
    clip.eval()
    report = {"backbone": "demo_vit", "train_images": n_train, "test_images": n_test, "captions": len(unique),
              "epochs": epochs, "seconds": round(time.time() - start, 1),
              "zero_shot_test_accuracy": zero_shot_accuracy(clip, fte, yte),
              "chance": {"kind": 1 / len(KIND_PROMPTS), "hue": 1 / len(HUES)}, "seed": seed,
              "logit_scale": round(math.exp(clip.logit_scale.item()), 2)}  # fmt: skip
    return clip, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(DEMO_FILE), help="the demo ViT's file: the text side is added to it")
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    clip, report = pretrain_text(n_train=args.images, epochs=args.epochs, seed=args.seed)
    out = Path(args.out)
    image = {k: v for k, v in load_file(DEMO_FILE).items() if k in build_vit("demo_vit").state_dict()}
    save_file({**image, **to_openai_names(clip)}, out)
    out.with_name("demo_text.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["zero_shot_test_accuracy"], indent=2))


if __name__ == "__main__":
    main()

"""The official ViFi-CLIP model, transcribed: ``trainers/vificlip.py`` (muzairkhattak/ViFi-CLIP @
e2d1948307f582052078eb8a4afbeb50247166f1), the fine-tuning branch (``PROMPT_MODEL False``, ``ZS_EVAL False``), on
open_clip's CLIP modules (the same OpenAI architecture and names as the ``clip`` package the official code vendors).

- ``VLPromptLearner``: the prompts ``CTX_INIT + " " + name + "."`` tokenized once and looked up in CLIP's token
  embedding at construction, kept as the buffer ``complete_text_embeddings``; the embedding table itself is not kept.
- ``TextEncoder``: prompts + positional embedding, the causal transformer, ``ln_final``, the row at
  ``tokenized_prompts.argmax(-1)``, ``@ text_projection``.
- ``ViFiCLIP.forward``: (B, T, 3, H, W) -> frames through ``clip_model.visual`` (CLS -> ln_post -> @ proj), the mean
  over T, both sides L2-normalised, ``logit_scale.exp() * image @ text.T``.
- ``returnCLIP``'s freezing by ``USE``: both -> every parameter; image -> names containing "image_encoder"; text ->
  names containing "text_encoder".

Left out: the prompting branch (VPT), ``model.float()`` (everything is fp32 here) and the CUDA placement.

Checked against the official code on CPU: its ``ViFiCLIP`` built by its vendored ``clip.build_model`` (which stores
the weights in fp16; the same weights rounded so given to this transcription) on a random open_clip CLIP (widths 128,
2 heads, 2 blocks per tower, four class names including "café au lait"): the same parameter names, the same prompt
buffer, logits 4.5e-8 apart on two 4-frame clips.
"""

from __future__ import annotations

import torch
from torch import nn


class TextEncoder(nn.Module):
    def __init__(self, clip_model):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.attn_mask = clip_model.attn_mask  # open_clip passes the causal mask; OpenAI's blocks hold it

    def forward(self, prompts, tokenized_prompts):
        x = prompts + self.positional_embedding
        x = self.transformer(x, attn_mask=self.attn_mask)  # open_clip's transformer is batch-first
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokenized_prompts.argmax(dim=-1)] @ self.text_projection


class PromptLearner(nn.Module):
    def __init__(self, classnames, clip_model, tokenize, ctx_init="a photo of a"):
        super().__init__()
        prompts = [ctx_init.replace("_", " ") + " " + name + "." for name in classnames]
        tokenized = torch.cat([tokenize(p) for p in prompts])
        with torch.no_grad():
            self.register_buffer("complete_text_embeddings", clip_model.token_embedding(tokenized))
        self.tokenized_prompts = tokenized

    def forward(self):
        return self.complete_text_embeddings


class ViFiCLIP(nn.Module):
    def __init__(self, classnames, clip_model, tokenize, use="both"):
        super().__init__()
        self.prompt_learner = PromptLearner(classnames, clip_model, tokenize)
        self.tokenized_prompts = self.prompt_learner.tokenized_prompts
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        for name, param in self.named_parameters():
            param.requires_grad_(use == "both" or f"{use}_encoder" in name)

    def forward(self, image):
        logit_scale = self.logit_scale.exp()
        prompts = self.prompt_learner()
        b, t, c, h, w = image.size()
        image_features = self.image_encoder(image.reshape(-1, c, h, w)).view(b, t, -1).mean(dim=1)
        text_features = self.text_encoder(prompts, self.tokenized_prompts)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        return logit_scale * image_features @ text_features.t()


def official_checkpoint(model: ViFiCLIP) -> dict:
    """What ``utils/tools.epoch_saving`` writes, trained under DDP: ``model`` with the ``module.`` prefix (the
    optimizer, scheduler and yacs config left out)."""
    return {"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 10, "max_accuracy": 0.0}

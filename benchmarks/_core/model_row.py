"""One row of the methods and backbones tables (benchmarks/model/methods.py, backbones.py): a model's training step
time and memory and its inference time, measured the same way for every row so that rows compare."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks._core.timing import MIB, median_seconds
from vidapter.classifier import build_model, merge_adapters
from vidapter.config import Config, ModelConfig
from vidapter.demo.run import training_memory
from vidapter.optim import build_optimizer
from vidapter.presets import get_preset


def measure_row(name: str, model_cfg: ModelConfig, device: torch.device, dtype: str, batch: int, warmup: int,
                iters: int) -> dict:  # fmt: skip
    """Build ``model_cfg`` (random weights) and measure, on ``device`` under ``dtype`` ("fp32" or "bf16" autocast):
    the median train step (train mode, forward, cross-entropy on random labels, backward, AdamW over the trainable
    tensors with the AIM recipe's settings, zero_grad); on CUDA the step's peak allocated memory beyond the weights;
    the bytes a step keeps (autograd's saved tensors, once per storage, plus trainable weights, gradients and AdamW's
    moments); the median eval-mode inference; for ZeroI2V and LoRA also inference after ``merge_adapters``."""
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    model = build_model(model_cfg).to(device)
    size = model.backbone.image_size
    clip = torch.randn(batch, 3, model_cfg.num_frames, size, size, device=device)
    labels = torch.randint(0, model_cfg.num_classes, (batch,), device=device)
    opt = build_optimizer(model, get_preset("k400_vitb16_8f").optim)

    def step() -> None:
        with amp:
            loss = F.cross_entropy(model(clip), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def infer() -> None:
        with torch.inference_mode(), amp:
            model(clip)

    row = {"row": name, "method": model_cfg.method, "trainable": sum(p.numel() for p in model.parameters()
                                                                     if p.requires_grad)}  # fmt: skip
    model.train()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        held = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    row["train_step_s"] = median_seconds(step, device, warmup, iters)
    if device.type == "cuda":
        row["train_peak_mib"] = (torch.cuda.max_memory_allocated() - held) / MIB
    with amp:
        kept = training_memory(model, batch, model_cfg.num_frames, size)
    row["kept_for_step_mib"] = kept["total"] / MIB
    row["saved_for_backward_mib"] = kept["saved_for_backward"] / MIB
    row["trainable_state_mib"] = kept["trainable_state"] / MIB
    model.eval()
    row["inference_s"] = median_seconds(infer, device, warmup, iters)
    if model_cfg.method in ("zeroi2v", "lora"):
        _, diff = merge_adapters(model, Config(model=model_cfg))
        row["merged_inference_s"] = median_seconds(infer, device, warmup, iters)
        row["merged_max_logit_change"] = diff
    print(f"{name:<34} train {row['train_step_s']:.3f} s  saved {row['saved_for_backward_mib']:7.1f} MiB  state "
          f"{row['trainable_state_mib']:6.1f} MiB  infer "
          f"{row['inference_s']:.3f} s" + (f"  merged {row['merged_inference_s']:.3f} s" if "merged_inference_s"
                                            in row else ""), flush=True)  # fmt: skip
    return row

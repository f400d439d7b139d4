"""Multiply-accumulate counts per view, measured by ``torch.utils.flop_counter`` on meta tensors (no compute).

The paper reports GFLOPs in fvcore's convention, which counts one multiply-accumulate as one FLOP; PyTorch's counter
counts two, so we halve it. On the meta device attention decomposes into the two batched matmuls, which are counted.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one eval-mode forward of ``model`` on a meta tensor of ``input_shape``.

    The model may live on the meta device (build it under ``with torch.device("meta")``, the cheap way) or anywhere
    else, in which case a copy is moved to meta; nothing is computed either way and ``model`` is left untouched. What
    the model computes once and reuses across forwards (a text tower's class embeddings) is not counted per view.
    """
    meta = model if next(model.parameters()).device.type == "meta" else copy.deepcopy(model).to("meta")
    was_training = meta.training
    meta.eval()
    x = torch.empty(input_shape, device="meta")
    meta(x)  # fills what a model keeps across forwards (ViFi-CLIP's class embeddings), so the count is a view's cost
    with FlopCounterMode(display=False) as counter:
        meta(x)
    meta.train(was_training)
    return counter.get_total_flops() // 2

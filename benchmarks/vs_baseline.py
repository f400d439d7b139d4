"""vidapter's AIM vs the reference design (benchmarks/baseline_aim.py), side by side in one run, same weights.

For each (frames T, batch B): train step (frozen backbone, AIM's trainable set, AdamW) and inference clips/s and peak
memory of both models, and their ratios. Both load the same random weights (the baseline's state dict, converted by
``vidapter convert``'s converter); the script first checks that they give the same logits (fp32, eval).

    python benchmarks/vs_baseline.py --device cpu --dtype fp32 --frames 8 --batch 1 --out results.json
    python benchmarks/vs_baseline.py --device cuda --dtype bf16 --frames 8 --batch 8 32 --out $OUT/vs_baseline.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_aim import I3DHead, Recognizer3D, ViT_CLIP, freeze_like_aim  # noqa: E402

from vidapter.config import apply_overrides  # noqa: E402
from vidapter.models.build import build_model  # noqa: E402
from vidapter.models.convert import aim_official_to_vidapter  # noqa: E402
from vidapter.models.vit import BACKBONES  # noqa: E402
from vidapter.presets import get_preset  # noqa: E402


def build_pair(preset: str, frames: int, backbone: str | None = None):
    overrides = ["model.pretrained=none", f"model.num_frames={frames}"]
    if backbone:
        overrides.append(f"model.backbone={backbone}")
    cfg = apply_overrides(get_preset(preset), overrides).model
    f = BACKBONES[cfg.backbone]
    base = Recognizer3D(
        ViT_CLIP(
            f.image_size,
            frames,
            f.patch_size,
            f.width,
            f.depth,
            f.heads,
            cfg.scale,
            cfg.num_tadapter,
            cfg.drop_path_rate,
        ),  # fmt: skip
        I3DHead(cfg.num_classes, f.width),
    )
    torch.manual_seed(0)
    with torch.no_grad():  # non-zero adapters, so the comparison exercises every branch; norms near 1
        for name, p in base.named_parameters():
            p.normal_(0, 0.02)
            if "ln_" in name and name.endswith("weight"):
                p.add_(1.0)
    freeze_like_aim(base)
    ours = build_model(cfg)
    ours.load_state_dict(aim_official_to_vidapter(base.state_dict()), strict=True)
    return ours, base, f.image_size, cfg.num_classes


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process max RSS, MiB


def measure(model, video, labels, device, dtype, train: bool, warmup: int, iters: int) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if train else None
    model.train(train)
    amp = dict(device_type=device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        if train:
            with torch.autocast(**amp):
                loss = F.cross_entropy(model(video).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), torch.autocast(**amp):
                model(video)

    for _ in range(warmup):
        step()
    _sync(device)
    _peak_reset(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / iters
    return {"clips_per_s": video.shape[0] / seconds, "s_per_iter": seconds, "peak_mib": _peak(device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", help="override the preset's backbone (tiny_clip for a dry run)")
    p.add_argument("--frames", type=int, nargs="+", default=[8])
    p.add_argument("--batch", type=int, nargs="+", default=[8])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    records = []
    for frames in args.frames:
        ours, base, size, classes = build_pair(args.preset, frames, args.backbone)
        ours.to(device)
        base.to(device)
        check = torch.randn(1, 3, frames, size, size, device=device)
        with torch.no_grad():
            diff = (ours.eval()(check) - base.eval()(check)).abs().max().item()
        for batch in args.batch:
            video = torch.randn(batch, 3, frames, size, size, device=device)
            labels = torch.randint(0, classes, (batch,), device=device)
            rec = {"frames": frames, "batch": batch, "max_logit_diff_fp32": diff}
            for mode in ("train", "inference"):
                for name, model in (("vidapter", ours), ("baseline", base)):
                    try:
                        rec[f"{mode}_{name}"] = measure(model, video, labels, device, dtype, mode == "train",
                                                        args.warmup, args.iters)  # fmt: skip
                    except torch.OutOfMemoryError:
                        rec[f"{mode}_{name}"] = "oom"
                        torch.cuda.empty_cache()
                a, b = rec[f"{mode}_vidapter"], rec[f"{mode}_baseline"]
                if isinstance(a, dict) and isinstance(b, dict):
                    rec[f"{mode}_speedup"] = a["clips_per_s"] / b["clips_per_s"]
                    rec[f"{mode}_memory_ratio"] = a["peak_mib"] / b["peak_mib"]
            records.append(rec)
            print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rec.items()
                              if not isinstance(v, dict)}), flush=True)  # fmt: skip
    out = {
        "benchmark": "vs_baseline",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": {
            "torch": torch.__version__,
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        },  # fmt: skip
        "dtype": args.dtype,
        "memory_metric": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process max RSS (monotone)",
        "records": records,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

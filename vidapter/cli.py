"""Command line: ``vidapter info`` and ``vidapter convert``. Thin: parsing and printing, the work is in the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from vidapter.adapters.peft import count_parameters, store_frozen_matrices_, trainable_state_dict
from vidapter.classifier import build_model, save_pretrained
from vidapter.config import Config, ConfigError, apply_overrides
from vidapter.data.pack import DEFAULT_LAYOUT, LAYOUTS
from vidapter.data.prepare import KINETICS_TEMPLATE
from vidapter.engine import TrainError
from vidapter.files import TRUST_HINT, FileError, write_text
from vidapter.models.convert import (
    ConversionError,
    aim_official_to_vidapter,
    detect_format,
    evl_official_to_vidapter,
    st_adapter_official_to_vidapter,
    zeroi2v_official_to_vidapter,
)
from vidapter.models.flops import count_macs
from vidapter.models.pretrained import WEIGHTS, WeightsError, check_keys, read_checkpoint
from vidapter.models.vit import BACKBONES, list_backbones
from vidapter.presets import PRESETS, get_preset, list_presets
from vidapter.runtime import autocast_dtype, resolve_compile, resolve_device, resolve_frozen_dtype

log = logging.getLogger("vidapter")

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}


def _config(args: argparse.Namespace, overrides: list[str]) -> Config:
    cfg = get_preset(args.preset) if args.preset else Config()
    return apply_overrides(cfg, overrides)


def model_info(cfg: Config) -> dict:
    """Parameter counts and GFLOPs per view of the model ``cfg`` describes, built on the meta device (no weights)."""
    m = dataclasses.replace(cfg.model, pretrained=None)
    with torch.device("meta"):
        model = build_model(m)
    size = model.backbone.image_size
    counts = count_parameters(model)
    macs = count_macs(model, (1, 3, m.num_frames, size, size))
    return {
        "preset": cfg.name,
        "backbone": m.backbone,
        "pretrained": cfg.model.pretrained,
        "view": {"frames": m.num_frames, "height": size, "width": size},
        "method": m.method,
        "lora": {"r": m.lora_r, "alpha": m.lora_alpha, "targets": m.lora_targets} if m.method == "lora" else None,
        "method_settings": _method_settings(m),
        "head_shifts": m.head_shifts,
        "adapters": m.adapters,
        "adapter_layers": m.adapter_layers,
        "finetune": m.finetune,
        "params": counts,
        "gflops_per_view": macs / 1e9,
        "flops_convention": "multiply-accumulates (fvcore/paper), torch.utils.flop_counter on meta tensors",
    }


def _method_settings(m) -> str:
    """The method's own sizes, in one line (AIM's and LoRA's are printed apart)."""
    if m.method == "zeroi2v":
        return f"linear adapters x{2 + m.num_tadapter} per block, ratio {m.ratio:g}, scale {m.scale:g}, dropout " \
               f"{m.zeroi2v_dropout:g} (mergeable)"  # fmt: skip
    if m.method == "st_adapter":
        return (
            f"ST-Adapters of {m.st_width} channels before {' and '.join(m.st_positions)}, temporal kernel {m.st_kernel}"
        )
    if m.method == "evl":
        return f"decoder of {m.evl_layers} layers on the last {m.evl_layers} blocks, backbone without gradient"
    return ""


def _print_info(info: dict) -> None:
    p = info["params"]
    v = info["view"]
    rows = [
        ("image backbone (+ final norm)", p["backbone"]),
        ("adapters", p["adapters"]),
        ("temporal embedding", p["temporal_embed"]),
        ("head", p["head"]),
        ("total", p["total"]),
        ("trainable", p["trainable"]),
    ]
    print(f"{info['preset']}: {info['backbone']} (weights: {info['pretrained'] or 'random init'})")
    kinds = ",".join(info["adapters"]) or "none"
    print(f"method: {info['method']}" + (f": {info['method_settings']}" if info["method_settings"] else ""))
    if info["adapters"] or info["method"] in ("aim", "lora"):
        print(f"AIM adapters: {kinds} on layers {info['adapter_layers']}, finetune={info['finetune']}")
    if info["lora"]:
        lora = info["lora"]
        print(f"LoRA: r={lora['r']}, alpha={lora['alpha']:g} on {','.join(lora['targets'])} of every block")
    if info["head_shifts"]:
        print(f"STDHA: head offsets {info['head_shifts']} (head h reads keys and values from frame t + offset)")
    for name, n in rows:
        print(f"  {name:<26}{n:>14,}  {n / 1e6:8.2f}M")
    print(f"  {'trainable share':<26}{100 * p['trainable'] / p['total']:>13.1f}%")
    print(f"GFLOPs per view ({v['frames']}x{v['height']}x{v['width']}): {info['gflops_per_view']:.1f}")
    print(f"  ({info['flops_convention']})")


def cmd_info(args: argparse.Namespace, overrides: list[str]) -> int:
    info = model_info(_config(args, overrides))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    return 0


def preset_rows() -> list[dict]:
    """One row per preset: what ``vidapter presets`` prints (counts and GFLOPs from a meta-device build)."""
    rows = []
    for name in list_presets():
        cfg = get_preset(name)
        info = model_info(cfg)
        rows.append({"name": name, "backbone": info["backbone"], "dataset": name.split("_")[0],
                     "frames": info["view"]["frames"], "classes": cfg.model.num_classes,
                     "trainable": info["params"]["trainable"], "gflops_per_view": info["gflops_per_view"]})  # fmt: skip
    return rows


def backbone_rows() -> list[dict]:
    """One row per backbone: its facts and the published weight names that load into it."""
    rows = []
    for name in list_backbones():
        f = BACKBONES[name]
        weights = [w for w, spec in WEIGHTS.items() if spec.backbone == name]
        rows.append({"name": name, "family": f.family, "width": f.width, "depth": f.depth, "heads": f.heads,
                     "patch": f.patch_size, "image_size": f.image_size, "activation": f.act, "tokens": _tokens(f),
                     "feature": f.feature, "licence": f.licence, "layout": f.layout, "weights": weights})  # fmt: skip
    return rows


def _tokens(f) -> str:
    """What a frame's token sequence holds and how positions enter, in a few words."""
    parts = ["cls"] if f.class_token else []
    parts += [f"{f.registers} reg"] if f.registers else []
    parts += ["patches"]
    pos = {"cls": "abs", "patches": "abs", "none": ""}[f.pos_embed]
    pos = "+".join(p for p in (pos, "rope" if f.rope else "") if p)
    return "+".join(parts) + f" ({pos})" + (" ls" if f.layer_scale else "")


def _print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[fmt.format(r[key]) if not isinstance(r[key], list) else ", ".join(r[key]) or "-" for key, fmt in columns]
             for r in rows]  # fmt: skip
    heads = [key.replace("_", " ") for key, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    for line in [heads, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


PRESET_COLUMNS = [("name", "{}"), ("backbone", "{}"), ("dataset", "{}"), ("frames", "{}"), ("classes", "{}"),
                  ("trainable", "{:,}"), ("gflops_per_view", "{:.1f}")]  # fmt: skip
BACKBONE_COLUMNS = [("name", "{}"), ("width", "{}"), ("depth", "{}"), ("heads", "{}"), ("patch", "{}"),
                    ("image_size", "{}"), ("activation", "{}"), ("tokens", "{}"), ("feature", "{}"), ("licence", "{}"),
                    ("weights", "{}")]  # fmt: skip


def cmd_listing(args: argparse.Namespace, overrides: list[str]) -> int:
    """``vidapter presets`` and ``vidapter backbones``: a table, or JSON with --json."""
    rows, columns = (
        (preset_rows(), PRESET_COLUMNS) if args.command == "presets" else (backbone_rows(), BACKBONE_COLUMNS)
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table(rows, columns)
    if args.command == "backbones":
        print("model.pretrained also takes a path to any file of the row's layouts (README, Weights); the tiny rows "
              "are structures for tests")  # fmt: skip
    return 0


# released checkpoint kinds: (layout, converter, whether the file holds the image weights too); AIM and ZeroI2V
# share MMAction2's layout (their tables tell their adapters apart)
OFFICIAL_KINDS = {
    "aim-official": ("aim_official", aim_official_to_vidapter, True),
    "zeroi2v-official": ("aim_official", zeroi2v_official_to_vidapter, True),
    "st-adapter-official": ("st_adapter_official", st_adapter_official_to_vidapter, False),
    "evl-official": ("evl_official", evl_official_to_vidapter, False),
}


def _shape_from_tensors(cfg, sd: dict) -> None:
    """What a released file fixes about the model: classes, frames, and the method's sizes."""
    m = cfg.model
    m.num_classes = sd["head.fc.weight"].shape[0]
    if "temporal_embed" in sd:
        m.num_frames = sd["temporal_embed"].shape[1]
    if m.method == "zeroi2v" and not any(".t_adapter_in." in k for k in sd):
        m.method, m.adapters, m.temporal_embed = "aim", [], True  # merged: plain blocks + time shifts
    if m.method == "zeroi2v":
        m.num_tadapter = 2 if any(".mlp_adapter_out." in k for k in sd) else 1
    if m.method == "st_adapter":
        m.st_positions = [p for p in ("attn", "mlp") if any(f".adapter_pre_{p}." in k for k in sd)]
        m.st_width = next(v.shape[0] for k, v in sd.items() if k.endswith(".fc1.weight"))
    if m.method == "evl":
        m.num_frames = sd["decoder.temporal_pos_embed.0"].shape[0]
        m.evl_layers = sum(k.startswith("decoder.temporal_pos_embed.") for k in sd)


def cmd_convert(args: argparse.Namespace, overrides: list[str]) -> int:
    cfg = _config(args, overrides)
    layout, converter, whole = OFFICIAL_KINDS[args.kind]
    raw = read_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle)
    try:
        fmt = detect_format(raw) if whole else layout
        if fmt != layout:
            raise ConversionError(f"layout is {fmt!r}, expected a released {args.kind} (MMAction2) checkpoint")
        sd = converter(raw)
    except ConversionError as e:
        raise WeightsError(f"{args.checkpoint}: {e}") from e
    if whole and args.backbone:
        raise ConfigError(f"{args.kind} files hold their image weights: --backbone does not apply")
    # every weight comes from the checkpoint, or the trained ones from it and the image ones from --backbone
    cfg.model.pretrained = None if whole else (args.backbone or cfg.model.pretrained)
    if not whole and not cfg.model.pretrained:
        raise ConfigError(f"{args.kind} files hold only the trained tensors: name the image weights with --backbone")
    _shape_from_tensors(cfg, sd)
    model = build_model(cfg.model, trust_pickle=args.trust_pickle)
    target = model.state_dict() if whole else trainable_state_dict(model)
    check_keys(sd, target, f"{args.checkpoint} does not fit preset {cfg.name}")
    model.load_state_dict(sd, strict=whole)
    names = Path(args.class_names).read_text().splitlines() if args.class_names else None
    out = save_pretrained(model, cfg, args.out_dir, names)
    print(f"wrote {out} ({len(sd)} tensors, {cfg.model.num_frames} frames, {cfg.model.num_classes} classes)")
    return 0


def cmd_data(args: argparse.Namespace, overrides: list[str]) -> int:
    if overrides:
        raise ConfigError(f"vidapter data takes no config overrides, got {overrides}")
    if args.data_command == "synth":
        from vidapter.data.synthetic import make_synthetic

        split_sizes = {"train": args.train, "val": args.val, "test": args.test}
        paths = make_synthetic(args.out_dir, per_class=split_sizes, size=args.size, frames=args.frames,
                               seed=args.seed, workers=args.workers)  # fmt: skip
        print("wrote " + ", ".join(f"{k}: {v}" for k, v in paths.items()))
        return 0
    if args.data_command == "check":
        from vidapter.data.check import check_samples, write_report
        from vidapter.data.datasets import read_annotations

        samples = read_annotations(args.list, root=args.root, fmt=args.format)
        bad = check_samples(samples, workers=args.workers, backend=args.backend)
        report = write_report(bad, len(samples), args.report or Path(args.list).with_suffix(".check.json"))
        for path, reason in bad.items():
            print(f"{path}: {reason}")
        print(f"{len(samples) - len(bad)}/{len(samples)} readable; report: {report}")
        return 1 if bad else 0
    if args.data_command == "pack":
        from vidapter.data.pack import pack_dataset

        m = pack_dataset(args.lists, args.root, args.out, layout=args.layout, short_side=args.short_side, crf=args.crf,
                         quality=args.quality, workers=args.workers)  # fmt: skip
        for path, reason in m["failed"].items():
            print(f"{path}: {reason}")
        total = m["files"] + len(m["failed"])
        size = f"{m['bytes'] / 1e9:.2f} GB" + (f" ({m['bytes'] / m['source_bytes']:.2f}x the sources)"
                                               if m["source_bytes"] else "")  # fmt: skip
        print(
            f"{m['files']} of {total} videos packed ({args.layout}, short side {args.short_side}) in {args.out}: "
            f"{size}, {m['hours']:.2f} h of video; failures left out of the lists; manifest {args.out}/pack.json"
        )
        return 0
    from vidapter.data import prepare

    if args.dataset == "kinetics":
        classes, lists = prepare.kinetics(args.src, args.path_template)
    elif args.dataset in ("ssv2", "diving48"):
        if len(args.src) < 2:
            raise ValueError(f"{args.dataset} needs --src LABELS_OR_VOCAB_JSON SPLIT_JSON [SPLIT_JSON ...]")
        classes, lists = getattr(prepare, args.dataset)(args.src[0], args.src[1:])
    else:
        classes, lists = getattr(prepare, args.dataset)(args.src[0], args.split)
    paths = prepare.write_lists(classes, lists, args.out_dir)
    print(f"{len(classes)} classes; " + ", ".join(f"{k}: {len(lists[k])} videos -> {v}" for k, v in paths.items()))
    if args.resize_short:
        from vidapter.data.pack import pack_tree

        if not (args.video_root and args.resized_root):
            raise ValueError("--resize-short needs --video-root (the originals) and --resized-root (the output)")
        rels = [p for items in lists.values() for p, _ in items]
        done = pack_tree(rels, args.video_root, args.resized_root, layout="h264", short_side=args.resize_short, crf=18)
        failed = {rel: e["error"] for rel, e in done.items() if "error" in e}
        for path, reason in failed.items():
            print(f"{path}: {reason}")
        print(f"resized {len(set(rels)) - len(failed)} videos to short side {args.resize_short} in {args.resized_root}")
        return 1 if failed else 0
    return 0


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="prepare, check and synthesise video datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    synth = dsub.add_parser(
        "synth", help="write the synthetic H.264 dataset (order pairs, appearance classes, relation families)"
    )
    synth.add_argument("out_dir")
    synth.add_argument("--train", type=int, default=100, help="clips per class")
    synth.add_argument("--val", type=int, default=20)
    synth.add_argument("--test", type=int, default=20)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--frames", type=int, default=16)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int)
    check = dsub.add_parser("check", help="decode every video of a list, report the unreadable ones")
    check.add_argument("list")
    check.add_argument("--root", help="folder the list's paths are relative to (default: the list's folder)")
    check.add_argument("--format", default="auto", choices=["auto", "list", "csv", "rawframes"])
    check.add_argument("--backend", default="pyav", choices=["pyav", "decord", "torchcodec"])
    check.add_argument("--workers", type=int)
    check.add_argument("--report", help="JSON report path (default: LIST with .check.json)")
    pack = dsub.add_parser("pack", help="rewrite a dataset's videos for fast random access (training-ready storage)")
    pack.add_argument("lists", nargs="+", help="list files (path label) or CSV lists; their videos are packed")
    pack.add_argument("--out", required=True, help="output folder: same relative paths, the lists, pack.json")
    pack.add_argument("--root", help="folder the lists' paths are relative to (default: the lists' folder)")
    pack.add_argument(
        "--layout",
        default=DEFAULT_LAYOUT,
        choices=list(LAYOUTS),
        help=f"default {DEFAULT_LAYOUT}: " + "; ".join(f"{k}: {v.doc}" for k, v in LAYOUTS.items()),
    )
    pack.add_argument("--short-side", type=int, default=256)
    pack.add_argument("--crf", type=int, default=23, help="x264 constant rate factor (H.264 layouts)")
    pack.add_argument("--quality", type=int, default=90, help="JPEG quality (jpeg layout)")
    pack.add_argument("--workers", type=int, help="parallel encoders (default: every core)")
    prep = dsub.add_parser("prepare", help="native annotations -> list files + classes.txt")
    prep.add_argument("dataset", choices=["kinetics", "ssv2", "diving48", "ucf101", "hmdb51"])
    prep.add_argument("--src", nargs="+", required=True,
                      help="kinetics: CSVs; ssv2: labels.json split.json...; diving48: vocab.json split.json...; "
                      "ucf101/hmdb51: the split folder")  # fmt: skip
    prep.add_argument("--out-dir", required=True)
    prep.add_argument("--split", type=int, default=1, help="ucf101/hmdb51 split number")
    prep.add_argument("--path-template", default=KINETICS_TEMPLATE, help="kinetics video path template")
    prep.add_argument("--resize-short", type=int, help="also re-encode every listed video at this short side (256)")
    prep.add_argument("--video-root", help="folder of the original videos (with --resize-short)")
    prep.add_argument("--resized-root", help="folder for the re-encoded videos, same relative paths")


def cmd_train(args: argparse.Namespace, overrides: list[str]) -> int:
    from vidapter.engine import fit

    fit(_config(args, overrides), trust_pickle=args.trust_pickle)
    return 0


def _parse_views(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--views expects FRAMESxCLIPSxCROPS such as 8x3x1, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when available")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "none"],
                   help="autocast dtype (auto: bf16 on CUDA, none = fp32 on the CPU)")  # fmt: skip


def _inference_setup(args: argparse.Namespace, model: torch.nn.Module) -> tuple[torch.device, torch.dtype | None]:
    """--device and --amp; the model moves to the device, its frozen matrices stored as train.frozen_dtype=auto does
    (bf16 under bf16 autocast: exact, no cast per forward)."""
    device = resolve_device(args.device, field="--device")
    amp_name = ("bf16" if device.type == "cuda" else "none") if args.amp == "auto" else args.amp
    amp = autocast_dtype(amp_name, device, field="--amp")
    model.to(device)
    frozen = resolve_frozen_dtype("auto", amp)
    if frozen is not None:
        store_frozen_matrices_(model, frozen)
    return device, amp


def cmd_eval(args: argparse.Namespace, overrides: list[str]) -> int:
    from vidapter.classifier import load_model
    from vidapter.data.build import build_dataset, test_views
    from vidapter.data.loader import build_loader
    from vidapter.evaluation import evaluate

    model, cfg, _ = load_model(args.model, trust_pickle=args.trust_pickle)
    cfg = apply_overrides(cfg, overrides)  # returns a new config
    clips, crops = (1, 1) if args.split == "val" else test_views(cfg.data)
    if args.split == "val" and args.views:
        raise ValueError("--views applies to --split test (val uses 1 clip x 1 centre crop)")
    if args.views:
        frames, clips, crops = _parse_views(args.views)
        if frames != cfg.model.num_frames:
            raise ValueError(f"--views {args.views}: the model takes {cfg.model.num_frames} frames")
        if cfg.data.sampling != "dense" and clips != 1:
            raise ValueError(f"{cfg.data.sampling} sampling has one clip of T segments; use 1 clip")
        cfg.data.test_clips, cfg.data.test_crops = clips, crops
    facts = model.backbone.facts
    ds, names = build_dataset(cfg.data, args.split, num_frames=cfg.model.num_frames,
                              num_classes=cfg.model.num_classes, mean=facts.mean, std=facts.std)  # fmt: skip
    loader = build_loader(ds, args.batch_size, train=False, workers=cfg.data.workers)
    device, amp = _inference_setup(args, model)
    compiled = resolve_compile({"auto": "auto", "true": True, "false": False}[args.compile], device, field="--compile")
    runner = torch.compile(model) if compiled else model
    amp_name = str(amp).removeprefix("torch.") if amp else "none"
    how = "compiled (the first batches compile)" if compiled else "eager"
    log.info("eval on %s, amp %s, %s", device, amp_name, how)
    metrics = evaluate(runner, loader, device=device, num_classes=cfg.model.num_classes, clips=clips, crops=crops,
                       amp=amp, normalize=ds.normalize)  # fmt: skip
    protocol = f"{cfg.model.num_frames}x{clips}x{crops} (frames x clips x crops)"
    out = {k: v for k, v in metrics.items() if k not in ("confusion", "skipped")}
    out.update(split=args.split, protocol=protocol, skipped=len(metrics["skipped"]), device=str(device), amp=amp_name,
               compiled=compiled)  # fmt: skip
    if args.json:
        write_text(args.json, json.dumps({**out, "confusion": metrics["confusion"].tolist()}, indent=2) + "\n")
    print(f"{args.split}: {out['videos']} videos, views {protocol}")
    print(f"  multi-view  top-1 {out['top1']:.4f}  top-5 {out['top5']:.4f}  mean class {out['mean_class_acc']:.4f}")
    print(f"  single-view top-1 {out['single_view_top1']:.4f}  top-5 {out['single_view_top5']:.4f} (centre view)")
    return 0


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders expanded to the video files inside (recursively, sorted)."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            out.append(p)
    return out


def cmd_predict(args: argparse.Namespace, overrides: list[str]) -> int:
    from vidapter.classifier import load_model, predict_file
    from vidapter.data.decode import VideoError

    model, cfg, names = load_model(args.model, trust_pickle=args.trust_pickle)
    cfg = apply_overrides(cfg, overrides)
    device, amp = _inference_setup(args, model)
    failed = 0
    for path in expand_inputs(args.videos):
        try:
            result = predict_file(model, cfg, path, names=names, top_k=args.top_k, window=args.window, device=device,
                                  amp=amp)  # fmt: skip
        except VideoError as e:
            print(f"{e}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps(result))
        elif "windows" in result:
            for w in result["windows"]:
                best = ", ".join(f"{t['name']} {t['prob']:.2f}" for t in w["top"])
                print(f"{path} [{w['start_s']:.1f}-{w['end_s']:.1f}s]: {best}")
        else:
            print(f"{path}: " + ", ".join(f"{t['name']} {t['prob']:.2f}" for t in result["top"]))
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace, overrides: list[str]) -> int:
    from vidapter.adapters.peft import export_adapters
    from vidapter.classifier import load_model, merge_adapters
    from vidapter.config import to_dict

    if not (args.adapters or args.model_dir):
        raise ValueError("export needs --adapters FILE and/or --model-dir DIR")
    if args.merge and (args.adapters or not args.model_dir):
        raise ValueError("export --merge writes a model directory: give --model-dir DIR (and no --adapters)")
    model, cfg, names = load_model(args.model, trust_pickle=args.trust_pickle)
    if args.merge:
        method = cfg.model.method
        cfg, diff = merge_adapters(model, cfg)
        print(f"merged the {method} model's adapters into its frozen weights (largest logit change {diff:.2g})")
    if args.adapters:
        path = export_adapters(model, args.adapters, backbone=cfg.model.pretrained or cfg.model.backbone,
                               config=to_dict(cfg))  # fmt: skip
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, trainable tensors only)")
    if args.model_dir:
        print(f"wrote {save_pretrained(model, cfg, args.model_dir, names, intact=f'{args.model} is unchanged')}")
    return 0


def cmd_demo(args: argparse.Namespace, overrides: list[str]) -> int:
    from vidapter.demo.run import run_ablation, run_demo, run_methods

    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.ablation and args.methods:
        raise ValueError("vidapter demo takes --ablation or --methods, not both")
    if args.methods:
        run_methods(data_dir, Path(args.run_dir or "runs/methods"), overrides=overrides)
    elif args.ablation:
        run_ablation(data_dir, Path(args.run_dir or "runs/ablation"), overrides=overrides)
    else:
        run_demo(data_dir, Path(args.run_dir or "runs/demo"), overrides=overrides)
    return 0


def _trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help="read checkpoints and weight files with full pickle, which can run code written into the "
                   "file; by default they are read with PyTorch's restricted loader: " + TRUST_HINT)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidapter",
        description="Adapt image models to video action recognition (AIM). Overrides: --section.field=value.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="parameters and GFLOPs per view of a preset")
    info.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME", help="one of: " + ", ".join(PRESETS))
    info.add_argument("--json", action="store_true")
    for name, text in (
        ("presets", "the named recipes: backbone, dataset, frames, classes, trainable, GFLOPs/view"),
        ("backbones", "the image backbone rows and the weight names each accepts"),
    ):
        listing = sub.add_parser(name, help=text)
        listing.add_argument("--json", action="store_true")
    conv = sub.add_parser("convert", help="convert a released checkpoint into a vidapter model directory")
    conv.add_argument("kind", choices=list(OFFICIAL_KINDS))
    conv.add_argument("checkpoint")
    conv.add_argument("out_dir")
    conv.add_argument("--preset", required=True, choices=sorted(PRESETS), metavar="NAME")
    conv.add_argument("--class-names", help="text file, one class name per line")
    conv.add_argument("--backbone", help="image weights the trained tensors sit on (st-adapter-official, "
                      "evl-official): any name or file model.pretrained takes; default: the preset's")  # fmt: skip
    _trust_option(conv)
    train = sub.add_parser("train", help="train a preset; --section.field=value overrides")
    train.add_argument("--preset", choices=sorted(PRESETS), metavar="NAME", help="one of: " + ", ".join(PRESETS))
    _trust_option(train)
    ev = sub.add_parser("eval", help="evaluate a model directory, run directory or checkpoint")
    ev.add_argument("model")
    ev.add_argument("--split", default="test", choices=["val", "test"])
    ev.add_argument("--views", help="FRAMESxCLIPSxCROPS, e.g. 8x3x1 (default: the recipe's)")
    ev.add_argument("--batch-size", type=int, default=4)
    ev.add_argument("--json", help="write the metrics (and confusion matrix) to this JSON file")
    _inference_options(ev)
    _trust_option(ev)
    ev.add_argument("--compile", default="auto", choices=["auto", "true", "false"],
                    help="torch.compile the model (auto: on CUDA; about half a minute, then faster)")  # fmt: skip
    pred = sub.add_parser("predict", help="classify video files or folders")
    pred.add_argument("model")
    pred.add_argument("videos", nargs="+")
    pred.add_argument("--top-k", type=int, default=5)
    pred.add_argument("--window", type=float, help="seconds: one prediction per window along the timeline")
    pred.add_argument("--json", action="store_true", help="one JSON object per line")
    _inference_options(pred)
    _trust_option(pred)
    exp = sub.add_parser("export", help="export adapters only (small file) or a full model directory")
    exp.add_argument("model")
    exp.add_argument("--adapters", help="output .safetensors with the trainable tensors and the backbone identity")
    exp.add_argument("--model-dir", help="output model directory (config.json + model.safetensors + classes.txt)")
    merge_help = (
        "fold LoRA updates or ZeroI2V's adapters into the frozen weights first (checked against the unmerged logits)"
    )
    exp.add_argument("--merge", action="store_true", help=merge_help)
    _trust_option(exp)
    demo = sub.add_parser("demo", help="AIM on synthetic videos with vidapter's own image ViT, on CPU in minutes")
    demo.add_argument(
        "--ablation",
        action="store_true",
        help="Table 1 in miniature: seven rows, same budget (order pairs, relations, appearance)",
    )
    demo.add_argument(
        "--methods",
        action="store_true",
        help="every method (AIM, ST-Adapter, EVL, ZeroI2V, LoRA) on the same data, steps and evaluation",
    )
    demo.add_argument("--data-dir", help="synthetic dataset cache (default ~/.cache/vidapter/demo-data)")
    demo.add_argument("--run-dir", help="default runs/demo, runs/ablation or runs/methods")
    _add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args, rest = build_parser().parse_known_args(argv)
    bad = [r for r in rest if not r.startswith("--") or "=" not in r]
    if bad:
        print(
            f"vidapter: error: unrecognised arguments {bad}; overrides look like --model.num_frames=16", file=sys.stderr
        )
        return 2
    commands = {
        "info": cmd_info,
        "presets": cmd_listing,
        "backbones": cmd_listing,
        "convert": cmd_convert,
        "data": cmd_data,
        "train": cmd_train,
        "eval": cmd_eval,
        "predict": cmd_predict,
        "export": cmd_export,
        "demo": cmd_demo,
    }
    try:
        return commands[args.command](args, rest)
    except FileError as e:  # a file could not be read or written: the message names it and what is intact
        print(f"vidapter: error: {e}", file=sys.stderr)
        return 1
    except (ConfigError, WeightsError, ConversionError, ValueError, FileNotFoundError, ImportError, TrainError) as e:
        print(f"vidapter: error: {e}", file=sys.stderr)
        return 2

"""``vidapter data synth|check|pack|prepare|fewshot|base-novel``: write, check, pack and prepare video datasets, and
the few-shot and base-to-novel protocols' lists."""

from __future__ import annotations

from pathlib import Path

from vidapter.cli.common import no_overrides
from vidapter.config import ConfigError
from vidapter.data.pack import DEFAULT_LAYOUT, LAYOUTS
from vidapter.data.prepare import KINETICS_TEMPLATE


def add_parser(sub) -> None:
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
    few = dsub.add_parser("fewshot", help="K videos per class of a list, nested across K, deterministic by seed")
    few.add_argument("list", help="a list file (path label) or CSV list")
    few.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8, 16])
    few.add_argument("--seed", type=int, default=0)
    few.add_argument("--out", help="output folder (default: the list's); files LIST_STEM_{K}shot_seed{S}.txt")
    bn = dsub.add_parser("base-novel", help="split the classes in base and novel by training-set frequency "
                         "(the least frequent half novel) and every list with them")  # fmt: skip
    bn.add_argument("train", help="the training list: its counts rank the classes")
    bn.add_argument("--classes", required=True, help="class names (classes.txt, or an id,name label CSV)")
    bn.add_argument("--lists", nargs="*", default=[], help="more lists to split (val, test)")
    bn.add_argument("--out", required=True, help="output folder: base_classes.txt, novel_classes.txt, "
                    "STEM_base.txt and STEM_novel.txt for each list")  # fmt: skip
    prep = dsub.add_parser("prepare", help="native annotations -> list files + classes.txt")
    prep.add_argument("dataset", choices=["kinetics", "ssv2", "diving48", "ucf101", "hmdb51"])
    prep.add_argument("--src", nargs="+", required=True,
                      help="kinetics: CSVs; ssv2: labels.json split.json...; diving48: vocab.json split.json...; "
                      "ucf101/hmdb51: the split folder")  # fmt: skip
    prep.add_argument("--out-dir", required=True)
    prep.add_argument("--split", type=int, default=1, help="ucf101/hmdb51 split number")
    prep.add_argument("--classes", help="ucf101/hmdb51: a label file (classes.txt or id,name CSV, such as the ones "
                      "X-CLIP and ViFi-CLIP ship) checked against the videos' folders")  # fmt: skip
    prep.add_argument("--path-template", default=KINETICS_TEMPLATE, help="kinetics video path template")
    prep.add_argument("--resize-short", type=int, help="also re-encode every listed video at this short side (256)")
    prep.add_argument("--video-root", help="folder of the original videos (with --resize-short)")
    prep.add_argument("--resized-root", help="folder for the re-encoded videos, same relative paths")


def run(args, overrides: list[str]) -> int:
    no_overrides("data", overrides)
    commands = {"synth": synth, "check": check, "pack": pack, "prepare": prepare, "fewshot": fewshot,
                "base-novel": base_novel}  # fmt: skip
    return commands[args.data_command](args)


def fewshot(args) -> int:
    from vidapter.data.protocols import few_shot, list_entries, write_entries

    src = Path(args.list)
    out = Path(args.out) if args.out else src.parent
    sets = few_shot(list_entries(src), sorted(set(args.shots)), args.seed)
    for k, entries in sets.items():
        path = write_entries(out / f"{src.stem}_{k}shot_seed{args.seed}{src.suffix}", entries)
        print(f"{k} shots: {len(entries)} videos -> {path}")
    return 0


def base_novel(args) -> int:
    from vidapter.data.datasets import read_class_names
    from vidapter.data.protocols import base_novel_classes, list_entries, split_entries, write_entries
    from vidapter.files import write_text

    names = read_class_names(args.classes)
    out = Path(args.out)
    train = list_entries(args.train, num_classes=len(names))
    base, novel = base_novel_classes(train, len(names))
    for kind, ids in (("base", base), ("novel", novel)):
        write_text(out / f"{kind}_classes.txt", "".join(f"{names[c]}\n" for c in ids))
    print(f"{len(base)} base and {len(novel)} novel classes -> {out}/base_classes.txt, {out}/novel_classes.txt")
    for src in [Path(args.train), *map(Path, args.lists)]:
        entries = train if src == Path(args.train) else list_entries(src, num_classes=len(names))
        for kind, ids in (("base", base), ("novel", novel)):
            part = split_entries(entries, ids, is_csv=src.suffix == ".csv")
            path = write_entries(out / f"{src.stem}_{kind}{src.suffix}", part)
            print(f"{src.name} {kind}: {len(part)} videos -> {path}")
    return 0


def synth(args) -> int:
    from vidapter.data.synthetic import make_synthetic

    split_sizes = {"train": args.train, "val": args.val, "test": args.test}
    paths = make_synthetic(args.out_dir, per_class=split_sizes, size=args.size, frames=args.frames, seed=args.seed,
                           workers=args.workers)  # fmt: skip
    print("wrote " + ", ".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def check(args) -> int:
    from vidapter.data.check import check_samples, write_report
    from vidapter.data.datasets import read_annotations

    samples = read_annotations(args.list, root=args.root, fmt=args.format)
    bad = check_samples(samples, workers=args.workers, backend=args.backend)
    report = write_report(bad, len(samples), args.report or Path(args.list).with_suffix(".check.json"))
    for path, reason in bad.items():
        print(f"{path}: {reason}")
    print(f"{len(samples) - len(bad)}/{len(samples)} readable; report: {report}")
    return 1 if bad else 0


def pack(args) -> int:
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


def prepare(args) -> int:
    from vidapter.data import prepare as native

    if args.resize_short and not (args.video_root and args.resized_root):
        raise ConfigError("--resize-short needs --video-root (the originals) and --resized-root (the output)")
    if args.dataset == "kinetics":
        classes, lists = native.kinetics(args.src, args.path_template)
    elif args.dataset in ("ssv2", "diving48"):
        if len(args.src) < 2:
            raise ConfigError(f"{args.dataset} needs --src LABELS_OR_VOCAB_JSON SPLIT_JSON [SPLIT_JSON ...]")
        classes, lists = getattr(native, args.dataset)(args.src[0], args.src[1:])
    else:
        classes, lists = getattr(native, args.dataset)(args.src[0], args.split)
    if args.classes:
        from vidapter.data.datasets import read_class_names

        if args.dataset not in ("ucf101", "hmdb51"):
            raise ConfigError("--classes checks ucf101 and hmdb51 label files")
        native.check_class_names(read_class_names(args.classes), classes, lists, args.classes)
        print(f"{args.classes}: the {len(classes)} class names agree with the videos' folders")
    paths = native.write_lists(classes, lists, args.out_dir)
    print(f"{len(classes)} classes; " + ", ".join(f"{k}: {len(lists[k])} videos -> {v}" for k, v in paths.items()))
    if not args.resize_short:
        return 0
    from vidapter.data.pack import pack_tree

    # each path named by the list line it was written to, should it leave the output folder
    origins = {rel: f"{paths[split]}:{n}" for split, items in lists.items() for n, (rel, _) in enumerate(items, 1)}
    rels = [p for items in lists.values() for p, _ in items]
    done = pack_tree(rels, args.video_root, args.resized_root, layout="h264", short_side=args.resize_short, crf=18,
                     origins=origins)  # fmt: skip
    failed = {rel: e["error"] for rel, e in done.items() if "error" in e}
    for path, reason in failed.items():
        print(f"{path}: {reason}")
    print(f"resized {len(set(rels)) - len(failed)} videos to short side {args.resize_short} in {args.resized_root}")
    return 1 if failed else 0

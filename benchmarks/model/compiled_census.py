"""What a compiled training step's kernels must move, read from the compiler's own plan, on any machine.

torch.compile (inductor) fuses the step's elementwise work into kernels between the matmuls, which stay library calls
(cuBLAS on a GPU). After fusion, for the forward and the backward graph, this script records every kernel the compiler
plans: matmul (mm, addmm, bmm, convolution), attention (SDPA) or other (fused elementwise and reduction kernels), and
the bytes each reads and writes (inductor's own count: each buffer once per kernel, the best a kernel can do). Two
batch sizes split the bytes into a part per clip and a fixed part per step. On a GPU the "other" kernels are
memory-bound, so their bytes over the memory bandwidth bound their time from below; with the H200's measured "other"
kernel time (docs/benchmarks.md, `vs_baseline.py --profile`) they give the bandwidth those kernels achieved, and with
it the time of levers not measured yet.

The plan is the CPU compiler's when run on a CPU: the same graphs, decompositions, partitioner and fusion rules as on
a GPU, with CPU-specific kernel shapes (the CPU fuses loops that share outer loops; a GPU fuses a row reduction with
its elementwise consumers in one persistent kernel instead), so kernel counts are indicative and bytes close.

Also reported, per "other" kernel: the bytes that a matmul epilogue could absorb (a pointwise kernel that reads the
output of exactly one matmul, which nothing else reads and the graph does not return: fused into the matmul, as
inductor's Triton matmul templates do under ``mode="max-autotune"``, that output is neither written nor read again).

    python benchmarks/model/compiled_census.py --backbone tiny_clip --batch 1 2 --out /tmp/census.json   # seconds
    python benchmarks/model/compiled_census.py --batch 1 2 --variants compile-math compile-sdpa compile-fused \\
        --out docs/results/compiled_census_cpu.json                                         # ViT-B/16, ~20 min
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch._inductor import scheduler as sched
from torch._inductor.virtualized import V

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.aim_pair import build_pair, variant_model  # noqa: E402
from benchmarks._core.record import describe_machine, write_record  # noqa: E402

KINDS = ("matmul", "attention", "other", "bmm")  # bmm: the batched GEMMs (temporal attention), also counted as matmul
MATMUL = ("mm", "addmm", "bmm", "baddbmm", "convolution")
ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "cudnn_attention")


def _op_names(node) -> list[str]:
    """The ATen ops a scheduler node computes (its FX origins), short names, sorted."""
    names = set()
    for sub in node.get_nodes():
        if sub.node is not None:
            names |= {str(o.target).split(".")[-2 if "." in str(o.target) else -1] for o in sub.node.get_origins()
                      if o.op == "call_function"}  # fmt: skip
    return sorted(names)


def kernel_kind(node) -> str | None:
    """matmul / attention / other, or None for a node that launches nothing."""
    if isinstance(node, sched.NopKernelSchedulerNode):
        return None
    if node.is_extern():
        name = str(getattr(node.node, "python_kernel_name", "") or "")
        if type(node.node).__name__ == "MultiOutput":
            return None  # an output of a multi-output kernel: a view, no launch
        if any(k in name for k in ATTENTION):
            return "attention"
        if set(name.split(".")) & set(MATMUL):  # extern_kernels.mm, torch.ops.aten.convolution.default, ...
            return "matmul"
    return "other"


def census(nodes) -> list[dict]:
    """One record per kernel of a fused graph: kind, bytes, ops, and what a matmul epilogue could absorb."""
    outputs = set(V.graph.get_output_names())
    producer, readers = {}, collections.Counter()
    for n in nodes:
        for buf in n.get_outputs():
            producer[buf.get_name()] = n
        for dep in n.read_writes.reads:
            readers[dep.name] += 1
    kernels = []
    for n in nodes:
        kind = kernel_kind(n)
        if kind is None:
            continue
        reads = n.get_read_write_buffer_accesses(include_reads=True, include_writes=False)
        epilogue = 0
        if kind == "other" and not n.is_reduction():
            for name, nbytes in reads.items():
                src = producer.get(name)
                if src is not None and kernel_kind(src) == "matmul" and readers[name] == 1 and name not in outputs:
                    epilogue = max(epilogue, 2 * nbytes)  # one matmul output per epilogue: not written, not read
        ops = ",".join(_op_names(n)) if kind == "other" else str(n.node.python_kernel_name)
        kernels.append(
            {"kind": kind, "bytes": n.get_read_write_buffers_sizes(), "epilogue_bytes": epilogue, "ops": ops}
        )
    return kernels


def compiled_step_census(model, run, batch: int, frames: int, size: int, classes: int) -> tuple[list[list], float]:
    """Compile and run one bf16 training step; returns the kernels of each graph compiled (forward, backward)."""
    graphs = []

    def record(nodes):
        graphs.append(census(nodes))
        return nodes

    video = torch.randn(batch, 3, frames, size, size)
    labels = torch.randint(0, classes, (batch,))
    model.train()
    start = time.perf_counter()
    with torch._inductor.config.patch(_post_fusion_custom_pass=record, fx_graph_cache=False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(run(video).float(), labels)
        loss.backward()
    return graphs, time.perf_counter() - start


def summarize(graphs: list[list]) -> dict:
    out = {"graphs": len(graphs)}
    for kind in ("matmul", "attention", "other"):
        ks = [k for g in graphs for k in g if k["kind"] == kind]
        out[kind] = {"kernels": len(ks), "bytes": sum(k["bytes"] for k in ks)}
    out["other"]["epilogue_bytes"] = sum(k["epilogue_bytes"] for g in graphs for k in g)
    out["bmm"] = {"kernels": sum(k["ops"].endswith("bmm") for g in graphs for k in g),
                  "bytes": sum(k["bytes"] for g in graphs for k in g if k["ops"].endswith("bmm"))}  # fmt: skip
    return out


def op_groups(graphs: list[list]) -> dict[tuple[str, str], list[int]]:
    """The "other" kernels grouped by graph (forward/backward) and the ops they fuse: [kernels, bytes]."""
    groups = collections.defaultdict(lambda: [0, 0])
    for i, g in enumerate(graphs):
        for k in g:
            if k["kind"] == "other":
                group = groups["forward" if i == 0 else "backward", k["ops"]]
                group[0] += 1
                group[1] += k["bytes"]
    return groups


def per_clip_groups(small: list[list], large: list[list], step: int, n: int = 15) -> list[dict]:
    """Per-clip bytes of each fused-op group present at both batch sizes, biggest first."""
    a, b = op_groups(small), op_groups(large)
    rows = [{"graph": g, "ops": ops, "kernels": count, "bytes_per_clip": (nbytes - a[g, ops][1]) / step}
            for (g, ops), (count, nbytes) in b.items() if (g, ops) in a]  # fmt: skip
    return sorted(rows, key=lambda r: -r["bytes_per_clip"])[:n]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="k400_vitb16_8f")
    p.add_argument("--backbone", help="override the preset's backbone (tiny_clip for a dry run)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, nargs=2, default=[1, 2], help="two batch sizes: per clip = their difference")
    p.add_argument("--variants", nargs="+", default=["compile-math", "compile-sdpa", "compile-fused"])
    p.add_argument("--at-batch", type=int, default=32, help="batch of the printed model estimate")
    p.add_argument("--bandwidth", type=float, default=4.0, help="TB/s the other kernels achieve, for the estimate")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if not all(v.startswith("compile") for v in args.variants):
        p.error("only compile-* variants have a compiled plan")
    ours, base, size, classes = build_pair(args.preset, args.frames, args.backbone)
    rows = []
    for variant in args.variants:
        (b1, b2), plans = sorted(args.batch), []
        for b in (b1, b2):
            model, run = variant_model(variant, ours, base, bf16=True)
            graphs, seconds = compiled_step_census(model, run, b, args.frames, size, classes)
            plans.append((graphs, summarize(graphs)))
            print(f"{variant} B={b}: {len(graphs)} graphs compiled and run in {seconds:.0f} s", flush=True)
        (g1, s1), (g2, s2) = plans
        per_clip = {k: (s2[k]["bytes"] - s1[k]["bytes"]) / (b2 - b1) for k in KINDS}
        fixed = {k: s1[k]["bytes"] - b1 * per_clip[k] for k in KINDS}
        epilogue = (s2["other"]["epilogue_bytes"] - s1["other"]["epilogue_bytes"]) / (b2 - b1)
        at = {k: fixed[k] + args.at_batch * per_clip[k] for k in KINDS}
        groups = per_clip_groups(g1, g2, b2 - b1)
        row = {"variant": variant, "graphs": s2["graphs"], "kernels": {k: s2[k]["kernels"] for k in KINDS},
               "bytes_per_clip": per_clip, "bytes_fixed": fixed, "epilogue_bytes_per_clip": epilogue,
               f"other_ms_at_b{args.at_batch}_{args.bandwidth}tbs": at["other"] / args.bandwidth / 1e9,
               "top_other_per_clip": groups}  # fmt: skip
        rows.append(row)
        print(f"{variant}: {row['kernels']} kernels; GB per clip "
              f"{ {k: round(v / 1e9, 3) for k, v in per_clip.items()} }, fixed other {fixed['other'] / 1e9:.3f} GB; "
              f"epilogue-absorbable {epilogue / 1e9:.3f} GB per clip; other kernels at B={args.at_batch} and "
              f"{args.bandwidth} TB/s: {at['other'] / args.bandwidth / 1e9:.1f} ms", flush=True)  # fmt: skip
    write_record(args.out, "compiled_census", describe_machine("cpu"), preset=args.preset, backbone=args.backbone,
                 frames=args.frames, batches=args.batch, rows=rows)  # fmt: skip


if __name__ == "__main__":
    main()

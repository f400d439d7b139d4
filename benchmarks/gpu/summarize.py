"""Markdown tables from the GPU suite's results (a folder or gpu_results.tar.gz), for docs/benchmarks.md.

    python benchmarks/gpu/summarize.py gpu-results/gpu_results.tar.gz > /tmp/gpu_tables.md
    python benchmarks/gpu/summarize.py docs/results/h200_2026-11-27_compiled_levers   # the H200 results of the docs

One table per benchmark: vidapter's variants against the baseline (clips/s, peak MiB, MFU, ratios), scaling in T,
kernel time by kind, model_step, the loader by worker count and the full pipeline's data wait. Only what is in the
files is printed; a missing file or a failed step is said, not guessed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path


def load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _num(v, spec: str = ".1f") -> str:
    return format(v, spec) if isinstance(v, int | float) else str(v)


def vs_baseline(data: dict, title: str) -> list[str]:
    out = [f"### {title}", "", f"`{data['command']}` on {data['machine']['device']} (torch {data['machine']['torch']})",
           "", "| T | B | mode | variant | clips/s | peak MiB | MFU | speed vs baseline | memory vs baseline |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for rec in data["records"]:
        for key, val in rec.items():
            if not key.startswith(("train_", "inference_")):
                continue
            mode, variant = key.split("_", 1)
            if isinstance(val, dict):
                mfu = f"{100 * val['mfu']:.1f} %" if "mfu" in val else "-"
                out.append(f"| {rec['frames']} | {rec['batch']} | {mode} | {variant} | {val['clips_per_s']:.1f} | "
                           f"{val['peak_mib']:,.0f} | {mfu} | {_num(val.get('speedup', 1.0), '.2f')}x | "
                           f"{_num(val.get('memory_ratio', 1.0), '.2f')}x |")  # fmt: skip
            else:
                out.append(f"| {rec['frames']} | {rec['batch']} | {mode} | {variant} | {val} | | | | |")
    rows = [{"variant": f"B={rec['batch']} {key.split('_', 1)[1]}", **val["kernels"]}
            for rec in data["records"] for key, val in rec.items()
            if key.startswith("train_") and isinstance(val, dict) and "kernels" in val]  # fmt: skip
    if rows:
        out += ["", *profile({"command": "the same run, --profile", "batch": "as listed", "rows": rows})[2:]]
    return [*out, ""]


def profile(data: dict) -> list[str]:
    out = [f"### Kernel time by kind (profile_step.py), batch {data.get('batch', '?')}", "", f"`{data['command']}`", "",
           "| variant | kernel ms per step | wall ms per step | GPU busy | matmul | attention | other |",
           "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in data["rows"]:
        ms, frac = row["ms"], row["fraction"]
        cells = [f"{ms.get(k, 0):.1f} ms ({100 * frac.get(k, 0):.0f} %)" for k in ("matmul", "attention", "other")]
        wall = row.get("wall_ms_per_step")
        busy = f"{100 * row['busy']:.0f} %" if "busy" in row else "-"
        out.append(
            f"| {row['variant']} | {row['ms_per_step']:.1f} | {_num(wall)} | {busy} | " + " | ".join(cells) + " |"
        )
    return [*out, ""]


def identity(data: dict) -> list[str]:
    out = ["### Recompute modes vs plain autograd: trained tensors whose gradients differ (recompute_identity.py)", "",
           f"`{data['command']}`", "", "| backbone | SDPA | plain again | pointwise | mlp | first differing |",
           "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in data["rows"]:
        cells = [f"{r[k]['differ']}/{r[k]['tensors']} (max {r[k]['max_abs_diff']:.1e}"
                 + (f", {r[k]['differ_not_bias']} not biases)" if "differ_not_bias" in r[k] else ")")
                 for k in ("plain_again", "pointwise", "mlp")]  # fmt: skip
        out.append(
            f"| {r['backbone']} | {r['sdpa']} | " + " | ".join(cells) + f" | {', '.join(r['pointwise']['first'])} |"
        )
    probe = data.get("bias_probe") or []
    if probe:
        keys = [k for k in probe[0] if k not in ("shape", "max_abs_plain")]
        out += ["", "One linear layer's bias gradient against autograd's (B, L, in, out):", "",
                "| shape | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]  # fmt: skip
        out += [f"| {r['shape']} | " + " | ".join(str(r[k]) for k in keys) + " |" for r in probe]
    return [*out, ""]


def cpu_scaling(data: dict) -> list[str]:
    out = ["### How many cores the machine gives (cpu_scaling.py)", "",
           f"`{data['command']}` ({data['cpu_count']} CPUs listed, {data.get('affinity', '?')} usable)", "",
           "| work | processes | rate | effective cores |", "| --- | --- | --- | --- |"]  # fmt: skip
    for r in data["rows"]:
        unit = "frames_per_s" if "frames_per_s" in r else "MiB_per_s"
        out.append(f"| {r['work']} | {r['procs']} | {r[unit]:,.0f} {unit.replace('_per_s', '/s')} | "
                   f"{r['effective_cores']:.2f} |")  # fmt: skip
    return [*out, ""]


def model_step(data: dict, title: str) -> list[str]:
    out = [f"### {title}", "", f"`{data['command']}`", "",
           "| T | B | forward clips/s | train clips/s | forward peak MiB | train peak MiB |",
           "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in data["records"]:
        out.append(f"| {r['frames']} | {r['batch']} | {_num(r['fwd_clips_per_s'])} | {_num(r['train_clips_per_s'])} | "
                   f"{_num(r['fwd_peak_mib'], ',.0f')} | {_num(r['train_peak_mib'], ',.0f')} |")  # fmt: skip
    return [*out, ""]


def loader(data: dict, pipeline: dict | None) -> list[str]:
    out = ["### Feeding the GPU", "", f"`{data['command']}` ({data['cpu_count']} CPUs)", "",
           "| loader workers | clips/s (loader alone) |", "| --- | --- |"]  # fmt: skip
    out += [f"| {r['workers']} | {r['clips_per_s']:.1f} |" for r in data["rows"]]
    if pipeline:
        out += ["", f"Full pipeline: `{pipeline['command']}`", "", "| epoch | clips/s | data wait |"]
        out += ["| --- | --- | --- |"]
        out += [f"| {e['epoch']} | {e['clips_per_s']:.1f} | {100 * e['data_wait']:.0f} % |" for e in pipeline["epochs"]]
    return [*out, ""]


def temporal_attention(data: dict) -> list[str]:
    out = ["### The temporal attention alone, compiled (temporal_attention.py)", "", f"`{data['command']}`", "",
           "| way | ms per forward + backward | batched GEMMs | layout copies | largest buffer (elements) | "
           "broadcast (elements) |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    out += [f"| {r['way']} | {r['ms_fwd_bwd']:.2f} | {r['bmm_calls']} | {r.get('layout_copy_kernels', '-')} | "
            f"{r['largest_buffer_elements']:,} | {r['broadcast_elements']:,} |" for r in data["rows"]]  # fmt: skip
    return [*out, ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="the suite's work folder or its gpu_results.tar.gz")
    args = p.parse_args()
    folder = Path(args.results)
    if folder.is_file():
        tmp = Path(tempfile.mkdtemp(prefix="vidapter-gpu-results-"))
        with tarfile.open(folder) as tar:
            tar.extractall(tmp, filter="data")
        folder = tmp
    lines: list[str] = []
    gpu = folder / "gpu.csv"
    if gpu.exists():
        lines += ["GPU (nvidia-smi): " + " / ".join(gpu.read_text().strip().splitlines()), ""]
    for name, title in (("vs_baseline", "vidapter vs the baseline, every lever (T=8)"),
                        ("vs_baseline_frames", "Scaling in T"), ("vs_baseline_compile", "torch.compile"),
                        ("vs_baseline_compile_inference", "torch.compile, inference"),
                        ("vs_baseline_compile_levers", "torch.compile levers"),
                        ("vs_baseline_compile_autotune", "torch.compile, matmul epilogues (max-autotune)"),
                        ("vs_baseline_compile_graphs", "torch.compile with CUDA graphs")):  # fmt: skip
        data = load(folder, name)
        lines += vs_baseline(data, title) if data else [f"### {title}: no result file", ""]
    for name in ("profile_step", "profile_step_b8"):
        data = load(folder, name)
        lines += profile(data) if data else [f"### Kernel time by kind ({name}): no result file", ""]
    data = load(folder, "temporal_attention")
    lines += temporal_attention(data) if data else []
    data = load(folder, "recompute_identity")
    lines += identity(data) if data else ["### Recompute identity: no result file", ""]
    data = load(folder, "cpu_scaling")
    lines += cpu_scaling(data) if data else ["### CPU scaling: no result file", ""]
    for name, title in (("model_step", "model_step.py, ViT-B/16"), ("model_step_vitl14", "model_step.py, ViT-L/14")):
        data = load(folder, name)
        lines += model_step(data, title) if data else [f"### {title}: no result file", ""]
    data = load(folder, "loader_throughput")
    lines += loader(data, load(folder, "train_pipeline_gpu")) if data else ["### Feeding the GPU: no result file", ""]
    log = folder / "suite.log"
    failed = [ln for ln in log.read_text().splitlines() if ln.startswith("FAILED")] if log.exists() else []
    lines += ["Failed steps: " + ("; ".join(failed) if failed else "none")]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

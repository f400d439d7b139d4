"""``vidapter serve`` under load, on loopback: N concurrent clients x M requests, then the same with a share of broken
uploads. Bounded in count and time; the server is started and stopped by the script.

The server runs as ``vidapter serve MODEL`` in a process of its own (its defaults: batches of at most 8 views, 10 ms
of waiting for more, 2 decoding threads); the clients are threads of this process, each with its own HTTP
connection, uploading the test clips in turn. Before, the script computes every clip's expected answer with
``predict_file`` in this process, and checks every 200 against it (the same top classes, probabilities within 1e-4:
batched and single forwards differ in float rounding only). Recorded: requests/s, latency p50/p99, the batch sizes
the server formed (its ``GET /stats``), its resident memory after a warm-up and after the good requests (``--clients``
x ``--requests``, 1,000 by default), and every failed request. Then ``--broken`` of the uploads (20 % by default) are
broken in turn (empty, not a video, cut short, an audio-only file, over the upload limit): every good one must be
answered correctly, every bad one with its 4xx, and the server must still answer ``/health``.

    vidapter demo   # trains the demo model into runs/demo/model
    python benchmarks/app/serve_load.py --model runs/demo/model --out docs/results/serve_load_cpu.json
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, write_record  # noqa: E402


def clips(folder: Path, count: int) -> list[Path]:
    """``count`` synthetic test clips of the demo's classes (2 s, 64 px, H.264), one class after another."""
    from vidapter.data.synthetic import render_clip, write_mp4

    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        path = folder / f"clip{i:02d}.mp4"
        write_mp4(path, render_clip(i % 13, rng, size=64, frames=16), fps=8)
        out.append(path)
    return out


def broken(folder: Path, good: bytes, limit_mb: float) -> list[tuple[str, bytes, int]]:
    """Bad uploads: (name, bytes, the status the server must answer)."""
    from vidapter.data.synthetic import write_audio_only

    audio = folder / "audio.mp4"
    write_audio_only(audio)
    return [
        ("empty.mp4", b"", 400),
        ("text.mp4", b"this is not a video\n" * 50, 422),
        ("cut.mp4", good[: len(good) // 3], 422),
        ("audio.mp4", audio.read_bytes(), 422),
        ("big.mp4", os.urandom(int((limit_mb + 1) * 2**20)), 413),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile_ms(seconds: list[float], q: float) -> float | None:
    return float(np.percentile(seconds, q)) * 1e3 if seconds else None


def load(url: str, jobs: list[tuple[str, bytes, object]], clients: int, deadline: float) -> list[dict]:
    """Send ``jobs`` (name, bytes, expected: a dict of top names and probabilities, or a 4xx status) from
    ``clients`` threads, each taking the next job; returns one record per request."""
    import httpx

    results, lock, it = [], threading.Lock(), iter(enumerate(jobs))

    def client():
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    item = next(it, None)
                if item is None:
                    return
                i, (name, data, expected) = item
                start = time.perf_counter()
                try:
                    r = http.post(f"{url}/predict", files={"file": (name, data, "video/mp4")})
                    status, body = r.status_code, r.json()
                except Exception as e:  # a dropped connection or a non-JSON answer is a failure
                    status, body = None, {"error": f"{type(e).__name__}: {e}"}
                seconds = time.perf_counter() - start
                if isinstance(expected, dict):
                    ok = status == 200 and [t["name"] for t in body["top"]] == expected["names"] and np.allclose(
                        [t["prob"] for t in body["top"]], expected["probs"], atol=1e-4)  # fmt: skip
                else:
                    ok = status == expected and "error" in body
                with lock:
                    results.append({"i": i, "name": name, "good": isinstance(expected, dict), "status": status,
                                    "seconds": seconds, "ok": bool(ok),
                                    "error": None if ok else str(body)[:300]})  # fmt: skip

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def summary(results: list[dict], wall: float, before: dict, after: dict) -> dict:
    sizes = {k: after["batch_sizes"].get(k, 0) - before["batch_sizes"].get(k, 0) for k in after["batch_sizes"]}
    good = [r for r in results if r["good"]]
    lat = [r["seconds"] for r in good]
    return {
        "requests": len(results), "good": len(good), "bad": len(results) - len(good),
        "failed": sum(not r["ok"] for r in results),
        "requests_per_s": len(results) / wall, "wall_s": wall,
        "good_latency_p50_ms": percentile_ms(lat, 50), "good_latency_p99_ms": percentile_ms(lat, 99),
        "bad_latency_p50_ms": percentile_ms([r["seconds"] for r in results if not r["good"]], 50),
        "batch_sizes": {k: v for k, v in sorted(sizes.items(), key=lambda kv: int(kv[0])) if v},
        "forwards": after["forwards"] - before["forwards"],
        "rss_before_mib": before["rss_mib"], "rss_after_mib": after["rss_mib"],
        "failures": [r for r in results if not r["ok"]][:20],
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a saved model (vidapter demo writes runs/demo/model)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=125, help="per client")
    p.add_argument("--broken", type=float, default=0.2, help="share of broken uploads in the second run")
    p.add_argument("--clips", type=int, default=13)
    p.add_argument("--max-upload-mb", type=float, default=4)
    p.add_argument("--time-limit", type=float, default=900, help="seconds for the whole run at most")
    p.add_argument("--out", default=None, help="write the JSON record here")
    args = p.parse_args()
    import httpx

    from vidapter.classifier import load_model, predict_file

    end = time.monotonic() + args.time_limit
    tmp = Path(tempfile.mkdtemp(prefix="vidapter-load-"))
    videos = clips(tmp, args.clips)
    model, cfg, names = load_model(args.model)
    expected = []
    for v in videos:
        top = predict_file(model, cfg, v, names=names, top_k=5)["top"]
        expected.append({"names": [t["name"] for t in top], "probs": [t["prob"] for t in top]})
    del model
    good = [(v.name, v.read_bytes(), e) for v, e in zip(videos, expected, strict=True)]
    bad = broken(tmp, good[0][1], args.max_upload_mb)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "vidapter", "serve", args.model, "--port", str(port),
                               "--max-upload-mb", str(args.max_upload_mb)])  # fmt: skip
    runs = {}
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the server did not start (exit code {server.poll()})")
            time.sleep(0.5)
        load(url, good * 2, args.clients, end)  # warm-up: the allocator and the caches grow here, not below
        n = args.clients * args.requests
        for name, share in (("good", 0.0), ("broken", args.broken)):
            every = round(1 / share) if share else 0
            jobs = [bad[(i // every) % len(bad)] if every and i % every == every - 1 else good[i % len(good)]
                    for i in range(n)]  # fmt: skip
            before = httpx.get(f"{url}/stats").json()
            start = time.perf_counter()
            results = load(url, jobs, args.clients, end)
            wall = time.perf_counter() - start
            after = httpx.get(f"{url}/stats").json()
            runs[name] = summary(results, wall, before, after) | {"sent_of_planned": f"{len(results)}/{n}"}
            runs[name]["alive_after"] = httpx.get(f"{url}/health").status_code == 200
            r = runs[name]
            print(
                f"{name}: {r['requests']} requests ({r['bad']} broken) in {wall:.1f} s, "
                f"{r['requests_per_s']:.1f} requests/s, p50 {r['good_latency_p50_ms']:.0f} ms, "
                f"p99 {r['good_latency_p99_ms']:.0f} ms, {r['failed']} failed, batch sizes {r['batch_sizes']}, "
                f"RSS {r['rss_before_mib']:.0f} -> {r['rss_after_mib']:.0f} MiB, alive {r['alive_after']}"
            )
    finally:
        server.terminate()
        server.wait(30)
    if args.out:
        write_record(args.out, "serve_load", describe_machine("cpu"), model=args.model, clients=args.clients,
                     requests_per_client=args.requests, broken_share=args.broken, clips=args.clips,
                     max_upload_mb=args.max_upload_mb, runs=runs)  # fmt: skip
    if any(r["failed"] or not r["alive_after"] for r in runs.values()):
        raise SystemExit("some requests failed (see the record's failures)")


if __name__ == "__main__":
    main()

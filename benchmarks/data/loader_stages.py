"""Where a loader worker's time goes per training clip, and what moving a batch costs as float32 vs uint8.

One 10 s 340x256 video (the readers' content, benchmarks/_core/videos.py) packed in ``--layout`` (default sparse, short
side 256); K400 training sampling (dense 8x16). Per clip, one thread, median over ``--clips`` clips of: decode (open +
sample + get), Resize(256) (a no-op at short side 256), RandomResizedCrop(224), flip, ToDtype(float32), Normalize, and
the (T, C) -> (C, T) copy of a float or of a uint8 clip. Per batch of ``--batch`` clips: collation (torch.stack) and the
trip from one DataLoader worker to the main process through shared memory (a worker that returns a ready clip, so the
figure is the transfer and the pickling, not decoding), for float32 and uint8; with CUDA also pin_memory, the
host-to-device copy and ``Normalize`` on the device.
    python benchmarks/data/loader_stages.py --out docs/results/loader_stages_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository root, for benchmarks._core
from benchmarks._core.record import describe_machine, video_libraries, write_record  # noqa: E402
from benchmarks._core.timing import median_seconds  # noqa: E402
from benchmarks._core.videos import make_videos  # noqa: E402
from vidapter.data.decode import open_video  # noqa: E402
from vidapter.data.loader import collate  # noqa: E402
from vidapter.data.pack import pack_video  # noqa: E402
from vidapter.data.sampling import dense  # noqa: E402
from vidapter.data.transforms import Normalize  # noqa: E402
from vidapter.models.vit import CLIP_MEAN, CLIP_STD  # noqa: E402


def timed(fn, n: int) -> float:
    """Median ms of n calls after one (wall time; one thread runs, so process CPU time would show nothing more)."""
    return median_seconds(fn, "cpu", 1, n) * 1000


class Ready(torch.utils.data.Dataset):
    """Returns the same finished clip: a DataLoader over it measures transfer, not work."""

    def __init__(self, clip: torch.Tensor, n: int):
        self.clip, self.n = clip, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"video": self.clip.clone(), "label": 0, "index": i, "skipped": []}


def transfer_ms(clip: torch.Tensor, batch: int, batches: int, pin: bool) -> float:
    """Main-process ms per batch from one worker (steady state: the first batches are not timed)."""
    ds = Ready(clip, batch * (batches + 4))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=1, collate_fn=collate, pin_memory=pin,
                                         prefetch_factor=2, persistent_workers=False)  # fmt: skip
    it = iter(loader)
    for _ in range(4):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - t0) / batches * 1000


def jpeg_decode(src: Path, tmp: Path, batch: int, short_side: int) -> dict:
    """A batch of 8-frame clips from JPEG frame folders: libjpeg-turbo on one CPU thread vs nvJPEG on the GPU (one
    call for the batch's frames), clips/s; bytes are read from the page cache."""
    from vidapter.data.decode import _jpeg_decoder

    folder = tmp / "frames"
    pack_video(src, folder, "jpeg", short_side=short_side)
    files = sorted(folder.glob("img_*.jpg"))
    rng = np.random.default_rng(0)
    clips = [[files[i] for i in dense(8, 16, 1)(len(files), True, rng).ravel()] for _ in range(batch)]
    data = [torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8) for c in clips for f in c]
    decode, rgb = _jpeg_decoder()
    out = {}
    for device in ("cpu", "cuda"):

        def run(device=device):
            decode(data, mode=rgb, device=device)
            if device == "cuda":
                torch.cuda.synchronize()

        ms = timed(run, 5)
        out[device] = {"ms_per_batch": ms, "clips_per_s": batch / ms * 1000}
        print(f"JPEG decode on {device}: {out[device]['clips_per_s']:.0f} clips/s (batch {batch} x 8 frames)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layout", default="sparse")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(1)
    res = dict(args=vars(args), per_clip_ms={}, per_batch_ms={})
    with tempfile.TemporaryDirectory(prefix="vidapter_stages_") as tmp:
        src = make_videos(Path(tmp), 1, [250], crf=23)[250][0]
        path = Path(tmp) / f"{args.layout}.mp4"
        pack_video(src, path, args.layout, short_side=args.short_side)
        sampler, rng = dense(8, 16, 1), np.random.default_rng(0)

        def decode():
            with open_video(path) as v:
                idx = sampler(v.num_frames, True, rng)
                return v.get(idx.ravel().tolist())

        frames = decode()
        clip = tv_tensors.Video(torch.from_numpy(frames).permute(0, 3, 1, 2))
        resize, rrc = v2.Resize(256, antialias=True), v2.RandomResizedCrop(224, scale=(0.08, 1), antialias=True)
        flip, to_float = v2.RandomHorizontalFlip(1.0), v2.ToDtype(torch.float32, scale=False)
        norm = v2.Normalize(list(CLIP_MEAN), list(CLIP_STD))
        crop = rrc(resize(clip))
        flat = to_float(crop)
        stages = {
            "decode": decode,
            "resize_256": lambda: resize(clip),
            "random_resized_crop_224": lambda: rrc(clip),
            "flip": lambda: flip(crop),
            "to_float32": lambda: to_float(crop),
            "normalize": lambda: norm(flat),
            "to_CTHW_float32": lambda: flat.as_subclass(torch.Tensor).transpose(0, 1).contiguous(),
            "to_CTHW_uint8": lambda: crop.as_subclass(torch.Tensor).transpose(0, 1).contiguous(),
        }
        for name, fn in stages.items():
            res["per_clip_ms"][name] = timed(fn, args.clips)
            print(f"{name:<24} {res['per_clip_ms'][name]:7.2f} ms per clip", flush=True)
        if torch.cuda.is_available():
            res["jpeg_decode"] = jpeg_decode(src, Path(tmp), args.batch, args.short_side)
    u8 = crop.as_subclass(torch.Tensor).transpose(0, 1).contiguous()
    f32 = Normalize(CLIP_MEAN, CLIP_STD)(u8[None])[0]
    cuda = torch.cuda.is_available()
    for name, c in (("float32", f32), ("uint8", u8)):
        items = [{"video": c.clone(), "label": 0, "index": i, "skipped": []} for i in range(args.batch)]
        row = {"bytes_per_clip": c.nbytes, "collate": timed(lambda items=items: collate(items), 10)}
        row["worker_to_main"] = transfer_ms(c, args.batch, args.batches, pin=False)
        if cuda:
            batch = collate(items)["video"]
            row["worker_to_main_pinned"] = transfer_ms(c, args.batch, args.batches, pin=True)
            row["pin_memory"] = timed(lambda b=batch: b.pin_memory(), 10)
            pinned, dev = batch.pin_memory(), torch.device("cuda")

            def h2d(pinned=pinned, dev=dev):
                pinned.to(dev, non_blocking=True)
                torch.cuda.synchronize()

            row["host_to_device"] = timed(h2d, 10)
            on_dev, normalize = pinned.to(dev), Normalize(CLIP_MEAN, CLIP_STD)

            def dev_norm(x=on_dev, normalize=normalize):
                normalize(x)
                torch.cuda.synchronize()

            row["normalize_on_device"] = timed(dev_norm, 10) if name == "uint8" else None
        res["per_batch_ms"][name] = row
        print(f"batch of {args.batch} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if v is not None))
    if args.out:
        write_record(args.out, "loader_stages", describe_machine("cpu", **video_libraries()), **res)


if __name__ == "__main__":
    main()

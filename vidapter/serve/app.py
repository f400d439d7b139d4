"""The HTTP application: ``create_app(model, cfg, names)`` is a FastAPI app serving

- ``POST /predict``: a multipart upload in field ``file`` (optional form fields ``top_k``, ``window`` in seconds,
  ``frames=true`` for the frames the model saw as small JPEGs) -> 200 and what ``vidapter predict --json`` prints;
- ``GET /health`` -> ``{"status": "ok", "model": ...}``; ``GET /labels`` -> the class names; ``GET /`` -> the page;
- ``GET /stats`` -> the forwards run so far by batch size (views per forward) and the server's resident memory.

Bad input is a JSON ``{"error": "..."}`` with a 4xx status and never stops the server: 400 for an empty upload, 413
for an upload over ``max_upload_mb`` (refused from its Content-Length, or cut off once that many bytes arrived,
without reading the rest), 422 for a file that is not a readable video (not a video, truncated, damaged, no video
stream), longer than ``max_seconds``, or a missing or malformed field; 503 when the queue of clips is full. Each
upload is written to a private temporary directory (mode 0700) under a fixed name, whatever the client calls it,
and removed after the request, also on error. Decoding runs in a thread pool, the forward in the batcher's thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import torch

try:  # FastAPI reads the endpoints' annotations from this module's names
    from fastapi import FastAPI, File, Form, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
except ImportError:
    from vidapter.errors import MissingDependency

    raise MissingDependency("vidapter serve needs FastAPI and uvicorn: pip install 'vidapter[serve]'") from None

from vidapter.serve.batcher import Batcher, QueueFull

PAGE = Path(__file__).with_name("page.html")
CHUNK = 1 << 20


class LimitBody:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 from its Content-Length, or as soon as
    that many bytes have arrived, without reading the rest."""

    def __init__(self, app, limit: int, shown: float):
        self.app, self.limit, self.shown = app, limit, shown

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _reject(send, self.shown)
        seen, started, rejected = 0, False, False

        async def counted():
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request" and not rejected:
                seen += len(message.get("body", b""))
                if seen > self.limit and not started:  # answered now; the app reads a disconnect and stops
                    rejected = True
                    await _reject(send, self.shown)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message):
            nonlocal started
            if rejected:  # the 413 went out: whatever the app answers to its cut body is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not rejected:
                raise


async def _reject(send, limit_mb: float) -> None:
    body = JSONResponse({"error": f"upload larger than the limit of {limit_mb:g} MB"}, status_code=413)
    await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
    await send({"type": "http.response.body", "body": body.body})


def create_app(model, cfg, names: list[str] | None, *, model_name: str = "", max_upload_mb: float = 200,
               max_seconds: float = 600, max_batch: int = 8, max_wait: float = 0.01, queue_size: int = 64,
               decode_workers: int = 2, device: torch.device | str = "cpu", amp=None):  # fmt: skip
    """The FastAPI application serving ``model`` (see the module's docstring)."""
    from vidapter.classifier import decode_for_prediction, prediction, scores
    from vidapter.data.decode import VideoError

    device = torch.device(device)
    batcher = Batcher(model, device, max_batch=max_batch, max_wait=max_wait, queue_size=queue_size, amp=amp)
    decoders = ThreadPoolExecutor(decode_workers, thread_name_prefix="vidapter-decode")
    limit = int(max_upload_mb * 2**20)
    labels = list(names) if names else [str(i) for i in range(model.num_classes)]

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()
        decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="vidapter", lifespan=lifespan)
    app.state.batcher = batcher
    # the form's own bytes beside the file's: the exact check is the handler's
    app.add_middleware(LimitBody, limit=limit + 2**20, shown=max_upload_mb)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            problems.append(f"missing form field {field!r}" if e.get("type") == "missing"
                            else f"form field {field!r}: {e.get('msg')}")  # fmt: skip
        return error(422, "; ".join(problems) + " (POST a multipart form with the video in field 'file')")

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "classes": len(labels), "frames": cfg.model.num_frames}

    @app.get("/labels")
    async def get_labels():
        return {"labels": labels}

    @app.get("/stats")
    async def stats():
        sizes = batcher.batch_sizes()
        return {"forwards": sum(sizes.values()), "batch_sizes": {str(k): v for k, v in sizes.items()},
                "rss_mib": _rss_mib()}  # fmt: skip

    @app.post("/predict")
    async def predict(file: Annotated[UploadFile, File()], top_k: Annotated[int, Form()] = 5,
                      window: Annotated[float | None, Form()] = None,
                      frames: Annotated[bool, Form()] = False):  # fmt: skip
        if not 1 <= top_k <= 1000:
            return error(422, f"form field 'top_k': {top_k} is not between 1 and 1000")
        if window is not None and not window > 0:
            return error(422, f"form field 'window': {window} seconds is not above 0")
        folder = Path(tempfile.mkdtemp(prefix="vidapter-upload-"))  # mode 0700: this user's alone
        try:
            path = folder / "upload.video"  # a fixed name: nothing the client sends becomes a path
            size = 0
            with path.open("wb") as f:
                while chunk := await file.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        return error(413, f"upload larger than the limit of {max_upload_mb:g} MB")
                    f.write(chunk)
            if size == 0:
                return error(400, "empty upload: the field 'file' holds no bytes")
            loop = asyncio.get_running_loop()
            try:
                decoded = await loop.run_in_executor(decoders, decode_for_prediction, model, cfg, path, window,
                                                     max_seconds)  # fmt: skip
            except VideoError as e:
                return error(422, f"{_client_name(file.filename)}: {e.reason}")
            try:
                logits = await asyncio.gather(*(batcher.logits(v) for v in decoded.views))
            except QueueFull:
                return error(503, "the server is busy (its queue of clips is full): try again shortly")
            decoded.path = _client_name(file.filename)
            out = prediction(decoded, [scores(model, x) for x in logits], labels, top_k)
            if frames:
                out["fps"] = decoded.fps
                out["seen"] = await loop.run_in_executor(decoders, _thumbnails, path, cfg, decoded)
            return out
        finally:
            await file.close()
            shutil.rmtree(folder, ignore_errors=True)

    return app


def _rss_mib() -> float | None:
    """The process's resident memory now, MiB (Linux's /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _client_name(name: str | None) -> str:
    """The upload's file name as the client gave it, for messages and the result's "file" only (never a path)."""
    name = os.path.basename((name or "upload").replace("\\", "/"))
    return "".join(c if c.isprintable() else "?" for c in name)[:200] or "upload"


def _thumbnails(path: Path, cfg, decoded) -> list[dict]:
    """The frames of the first span's first view, as the model saw them before normalisation: small JPEGs."""
    import io

    import numpy as np
    from PIL import Image

    from vidapter.data.decode import open_video

    idx = np.asarray(decoded.indices[0]).reshape(-1)[: cfg.model.num_frames].tolist()
    with open_video(path, cfg.data.backend) as video:
        arr = video.get(idx)
    out = []
    for i, frame in zip(idx, arr, strict=True):
        jpeg = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(jpeg, format="JPEG", quality=85)
        out.append({"index": int(i), "time_s": i / decoded.fps if decoded.fps else None,
                    "jpeg": base64.b64encode(jpeg.getvalue()).decode()})  # fmt: skip
    return out

"""``vidapter serve``: the model behind HTTP, with a page to try it (FastAPI + uvicorn: ``pip install
'vidapter[serve]'``)."""

from __future__ import annotations

from vidapter.cli import common


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a model over HTTP (POST /predict, GET /health, /labels, and a page at /)",
                       epilog=common.OVERRIDES_HELP)  # fmt: skip
    p.add_argument("model", help="a model or run directory or a checkpoint")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=200, help="largest upload accepted (default 200 MB)")
    p.add_argument("--max-seconds", type=float, default=600, help="longest video accepted (default 600 s)")
    p.add_argument("--max-batch", type=int, default=8, help="views per forward at most (default 8)")
    p.add_argument("--max-wait-ms", type=float, default=10, help="how long a forward waits for more clips (10 ms)")
    p.add_argument("--queue", type=int, default=64, help="clips waiting at most; beyond, 503 (default 64)")
    p.add_argument("--decode-workers", type=int, default=2, help="decoding threads (default 2)")
    common.inference_options(p)
    common.trust_option(p)


def run(args, overrides: list[str]) -> int:
    from vidapter.classifier import load_model
    from vidapter.config import apply_overrides
    from vidapter.runtime import place_for_inference
    from vidapter.serve.app import create_app

    model, cfg, names = load_model(args.model, trust_pickle=args.trust_pickle)
    cfg = apply_overrides(cfg, overrides)
    rt = common.runtime_from(args)
    place_for_inference(model, rt)
    app = create_app(model, cfg, names, model_name=str(args.model), max_upload_mb=args.max_upload_mb,
                     max_seconds=args.max_seconds, max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000,
                     queue_size=args.queue, decode_workers=args.decode_workers, device=rt.device,
                     amp=rt.amp)  # fmt: skip
    import uvicorn

    print(f"serving {args.model} at http://{args.host}:{args.port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

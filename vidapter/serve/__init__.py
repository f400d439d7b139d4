"""``vidapter serve``: a trained model behind HTTP (FastAPI + uvicorn, the ``serve`` extra) with a page to try it."""

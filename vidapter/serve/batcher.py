"""Requests that arrive together share one forward: a bounded queue of clips, taken in batches of at most
``max_batch`` views after waiting up to ``max_wait`` seconds for more; the forward runs in its own thread, so the
event loop keeps accepting and decoding. A full queue refuses at once (``QueueFull``) instead of growing."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import torch


class QueueFull(Exception):
    """More clips wait than the queue holds: the server answers 503."""


class Batcher:
    def __init__(self, model: torch.nn.Module, device: torch.device, max_batch: int = 8, max_wait: float = 0.01,
                 queue_size: int = 64, amp: torch.dtype | None = None):  # fmt: skip
        self.model, self.device, self.amp = model.eval(), device, amp
        self.max_batch, self.max_wait, self.queue_size = max_batch, max_wait, queue_size
        self.queue: asyncio.Queue | None = None
        self.sizes: Counter[int] = Counter()  # views per forward -> how many forwards had that many
        self._runner = ThreadPoolExecutor(1, thread_name_prefix="vidapter-forward")
        self._task: asyncio.Task | None = None
        self._lock = threading.Lock()

    def batch_sizes(self) -> dict[int, int]:
        """Views per forward -> how many forwards had that many, so far (a snapshot, ascending)."""
        with self._lock:
            return dict(sorted(self.sizes.items()))

    async def start(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._runner.shutdown(wait=True)

    async def logits(self, views: torch.Tensor) -> torch.Tensor:
        """The model's logits (V, C) of one clip's views, computed in a batch with others."""
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((views, future))
        except asyncio.QueueFull:
            raise QueueFull from None
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            count = items[0][0].shape[0]
            deadline = loop.time() + self.max_wait
            while count < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                items.append(item)
                count += item[0].shape[0]
            try:
                out = await loop.run_in_executor(self._runner, self._forward, [v for v, _ in items])
            except Exception as e:  # a forward that fails fails its requests, not the server
                for _, f in items:
                    if not f.done():
                        f.set_exception(e)
                continue
            start = 0
            for views, f in items:
                if not f.done():
                    f.set_result(out[start : start + views.shape[0]])
                start += views.shape[0]

    def _forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        batch = torch.cat(views).to(self.device)
        with self._lock:
            self.sizes[batch.shape[0]] += 1
        amp = self.amp
        with torch.no_grad(), torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            return self.model(batch).float().cpu()

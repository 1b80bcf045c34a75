"""Dynamic batching: concurrent requests for one graph are merged into one onnxruntime call.

Each graph has a queue and a worker task. The worker takes the oldest request, waits at most
``max_delay`` for more (only when others are about: more than one request queued, or more
than one in the last call; a lone client's next request cannot come before its answer, so
it is never kept waiting), and runs
the requests that fit in ``max_batch`` images (and share
the non-batch shape of every input) as one call, in the single inference thread; each
request gets its own rows back, exactly what a call of its own gives, since every graph zoo
exports treats the images of a batch independently (BatchNorm in eval mode, no attention
across the batch). A request larger than ``max_batch`` runs alone. The queue holds at most
``max_queue`` images: past that, `QueueFull` (the server's 503 with Retry-After). A request
whose client gave up (its future cancelled) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np


class QueueFull(Exception):
    """The graph's queue holds as many images as it may."""


@dataclass
class _Pending:
    feeds: dict[str, np.ndarray]
    images: int
    future: asyncio.Future[dict[str, np.ndarray]]

    def key(self) -> tuple[Any, ...]:
        return tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(self.feeds.items()))


class Batcher:
    """The queue and worker of one graph; ``run`` is its blocking onnxruntime call."""

    def __init__(
        self,
        run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
        executor: Executor,
        max_batch: int,
        max_delay: float,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda images: None,
    ):
        self.run, self.executor = run, executor
        self.max_batch, self.max_delay, self.max_queue = max_batch, max_delay, max_queue
        self.on_batch = on_batch
        self.pending: deque[_Pending] = deque()
        self.queued = 0  # images waiting
        self.last_requests = 0  # requests merged into the last call
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = len(next(iter(feeds.values())))
        if self.queued and self.queued + images > self.max_queue:
            raise QueueFull
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(feeds, images, future))
        self.queued += images
        self.wake.set()
        return await future

    def _take(self) -> list[_Pending]:
        """The oldest live request and those behind it that fit beside it."""
        while self.pending and self.pending[0].future.done():  # its client went away
            self.queued -= self.pending.popleft().images
        if not self.pending:
            return []
        first = self.pending.popleft()
        taken, total, key = [first], first.images, first.key()
        kept: deque[_Pending] = deque()
        while self.pending:
            item = self.pending.popleft()
            if item.future.done():
                self.queued -= item.images
            elif item.key() == key and total + item.images <= self.max_batch:
                taken.append(item)
                total += item.images
            else:
                kept.append(item)
        self.pending = kept
        self.queued -= total
        return taken

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                company = len(self.pending) > 1 or self.last_requests > 1
                if self.queued < self.max_batch and self.max_delay > 0 and company:
                    deadline = time.monotonic() + self.max_delay
                    while self.queued < self.max_batch and time.monotonic() < deadline:
                        self.wake.clear()
                        try:
                            await asyncio.wait_for(
                                self.wake.wait(), max(deadline - time.monotonic(), 0)
                            )
                        except TimeoutError:
                            break
                batch = self._take()
                if not batch:
                    continue
                feeds = (
                    batch[0].feeds
                    if len(batch) == 1
                    else {k: np.concatenate([b.feeds[k] for b in batch]) for k in batch[0].feeds}
                )
                self.on_batch(sum(b.images for b in batch))
                self.last_requests = len(batch)
                try:
                    outputs = await loop.run_in_executor(self.executor, self.run, feeds)
                except Exception as exc:  # onnxruntime's own errors: every request hears
                    for b in batch:
                        if not b.future.done():
                            b.future.set_exception(exc)
                    continue
                start = 0
                for b in batch:
                    rows = slice(start, start + b.images)
                    start += b.images
                    if not b.future.done():
                        b.future.set_result({k: v[rows] for k, v in outputs.items()})

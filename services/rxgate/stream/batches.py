"""Records in, batches out: a batch closes when it is full or a few milliseconds after its
first record arrived, whichever comes first.

The faust agent puts each record it is given (`put`, which waits while a full batch is
queued: back-pressure), and the shell's loop takes them a batch at a time (`next`). While the
shell awaits a batch's acknowledgements, the next batch fills, so under load batches are full
and a lone record waits at most `wait` seconds for company.
"""
from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Batches(Generic[T]):
    def __init__(self, max_records: int, wait: float) -> None:
        if max_records < 1:
            raise ValueError("a batch holds at least one record")
        self.max_records = max_records
        self.wait = max(0.0, wait)
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=max_records)

    async def put(self, record: T) -> None:
        await self._queue.put(record)

    def __len__(self) -> int:
        return self._queue.qsize()

    async def next(self) -> list[T]:
        """The next batch: waits for a first record, then for at most `wait` seconds more."""
        queue = self._queue
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while len(batch) < self.max_records:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await queue.get())
            except TimeoutError:
                break
        return batch

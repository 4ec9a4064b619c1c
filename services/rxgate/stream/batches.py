"""Records in, batches out: a batch closes when it is full or a few milliseconds after its
first record arrived, whichever comes first.

The worker's consumer hands over the input records of a whole fetch at once (`extend`, after
waiting for `room`: back-pressure; consumer.py), and the shell's loop takes them a batch at a
time (`next`). While the shell awaits a batch's acknowledgements, the next batch fills, so
under load batches are full and a lone record waits at most `wait` seconds for company.
Nothing here is awaited per record.

`clear` drops what is queued (the partitions were revoked: their records are read again from
the committed offsets, by this worker or their new owner).

`handle_batches` is the worker's loop over them: batch after batch to the shell, up to
`SETTLING_MAX` of them settling (acknowledgements, then history writes) while the next is
decided.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Awaitable, Callable, Generic, Iterable, TypeVar

T = TypeVar("T")

# batches decided whose acknowledgements and history writes are still awaited, at most
SETTLING_MAX = 3


class Batches(Generic[T]):
    def __init__(self, max_records: int, wait: float) -> None:
        if max_records < 1:
            raise ValueError("a batch holds at least one record")
        self.max_records = max_records
        self.wait = max(0.0, wait)
        self._queued: list[T] = []
        self._arrived = asyncio.Event()  # set when records are queued
        self._room = asyncio.Event()  # set when fewer than max_records are queued
        self._room.set()

    def __len__(self) -> int:
        return len(self._queued)

    def has_room(self) -> bool:
        return len(self._queued) < self.max_records

    async def room(self) -> None:
        """Wait until fewer than `max_records` records are queued."""
        while not self.has_room():
            self._room.clear()
            await self._room.wait()

    def extend(self, records: Iterable[T]) -> None:
        """Queue records, all of them (callers wait for `room` first: at most a batch and one
        hand-over are queued)."""
        queued = len(self._queued)
        self._queued.extend(records)
        if len(self._queued) > queued:
            self._arrived.set()

    async def put(self, record: T) -> None:
        await self.room()
        self.extend((record,))

    def clear(self) -> int:
        """Drop every queued record; returns how many."""
        dropped = len(self._queued)
        self._queued.clear()
        self._room.set()
        return dropped

    async def next(self) -> list[T]:
        """The next batch: waits for a first record, then for at most `wait` seconds more."""
        queued = self._queued
        loop = asyncio.get_running_loop()
        while True:
            while not queued:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.wait
            while len(queued) < self.max_records:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._arrived.wait()
                except TimeoutError:
                    break
            batch = queued[:self.max_records]
            del queued[:self.max_records]
            if self.has_room():
                self._room.set()
            if batch:  # else cleared meanwhile
                return batch


async def handle_batches(batches: "Batches[T]",
                         submit: Callable[[list[T]], Awaitable[asyncio.Future]],
                         failed: Callable[[int], None], settling_max: int = SETTLING_MAX) -> None:
    """Take batch after batch and `submit` each (the shell decides it and hands its outputs to
    the producer; the future it returns completes once the batch is settled: its acks, then
    its histories' acks). Up to `settling_max` batches settle while the next is decided
    against their histories; each settles after the one before it (shell.py), so the
    broker's round trips do not hold up the checks. Only when that many are still settling
    does the loop wait, for the oldest: back-pressure, so the sealed histories and the
    unacknowledged sends stay bounded. `failed(size)` is told of a batch that raised."""
    settling: collections.deque[tuple[asyncio.Future, int]] = collections.deque()
    try:
        while True:
            batch = await batches.next()
            try:
                settled = await submit(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed(len(batch))
                settled = None
            if settled is not None:
                settling.append((settled, len(batch)))
            # the settled ones are let go at once; the oldest is waited for only at the bound
            while settling and (len(settling) >= settling_max or settling[0][0].done()):
                oldest, size = settling.popleft()
                try:
                    await oldest
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failed(size)
    finally:
        for pending, _ in settling:
            pending.cancel()

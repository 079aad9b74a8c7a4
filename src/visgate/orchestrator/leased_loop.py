"""The leased loop that every background worker of the control plane is.

Claim due records with a lease (up to the free capacity), run one task per record: its slow
`work` while a heartbeat keeps the lease, then `settle`, which writes the outcome and hands
the lease back. A loop that dies simply stops renewing: its records come due again when
their leases run out and any other loop takes them. A subclass may also run a record it
wrote already leased to itself (a hand-over, `holding_slot` then `start`), within the same
capacity and through the same task. Subclasses say how one kind of record is claimed,
worked, settled, extended and released; the scheduling lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

from visgate.logging import get_logger
from visgate.orchestrator.backoff import STORE_TROUBLE

log = get_logger(__name__)

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class LeasedLoop(ABC, Generic[Item, Outcome]):
    """Claim / run / drain / idle backoff / heartbeat / shutdown for one kind of record.

    `finish_on_stop` says what a stop does with the tasks in flight: wait for them (work
    that is short and whose interruption would repeat it, like a webhook send) or cancel
    them and hand their leases back at once (work that may take long and is repeatable).
    """

    name: ClassVar[str]
    finish_on_stop: ClassVar[bool] = False
    first_idle_wait_s: ClassVar[float] = 0.05  # doubles while idle, up to `poll_interval`
    # After a wake, how long to let further wakes gather before claiming: a burst of pokes
    # (one per POST) is then claimed in one query instead of one query per poke.
    wake_coalesce_s: ClassVar[float] = 0.0

    def __init__(
        self,
        *,
        owner: str,
        concurrency: int,
        lease_seconds: float,
        poll_interval: float,
        wake: asyncio.Event,
    ) -> None:
        self.owner = owner
        self.concurrency = concurrency
        self._running: set[asyncio.Task[None]] = set()
        self._reserved = 0  # slots held for records being handed over (see `holding_slot`)
        # A heartbeat extends the lease every third of it while work runs.
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.wake = wake

    @abstractmethod
    async def claim(self, limit: int) -> list[Item]:
        """Lease up to `limit` due records to `self.owner`."""

    @abstractmethod
    async def work(self, item: Item) -> Outcome:
        """The slow part (provider calls, a webhook send), run while the lease is extended."""

    @abstractmethod
    async def settle(self, item: Item, outcome: Outcome) -> None:
        """Write the outcome under the lease and release it. Expected refusals (the lease
        is gone, the record changed) are handled here; anything else is logged by the loop."""

    @abstractmethod
    async def extend(self, item: Item) -> bool:
        """Move the lease's end on; False when it is no longer ours."""

    @abstractmethod
    async def release(self, item: Item) -> None:
        """Hand the lease back now (shutdown), best effort: otherwise it simply runs out."""

    @property
    def running(self) -> int:
        """Tasks in flight."""
        return len(self._running)

    @property
    def free(self) -> int:
        """Room under `concurrency`: tasks in flight and slots held both count."""
        return self.concurrency - len(self._running) - self._reserved

    @contextlib.contextmanager
    def holding_slot(self) -> Iterator[None]:
        """Keep one slot while a record handed over directly (not claimed) is written, so
        neither a claim nor another hand-over takes it meanwhile."""
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    def start(self, item: Item) -> None:
        """Run `item`'s task (work under a heartbeat, then settle); the item is leased to us."""
        task = asyncio.create_task(self.process(item))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def run_once(self) -> int:
        """Claim what is due (up to free capacity) and start a task per record."""
        free = self.free
        if free <= 0:
            return 0
        claimed = await self.claim(free)
        for item in claimed:
            self.start(item)
        return len(claimed)

    async def drain(self) -> None:
        """Wait for every task in flight, those started meanwhile included."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim while capacity runs out before the due records do; otherwise wait for the
        wake event (a poke: new work, or a settled record due again at once) with a wait
        that doubles up to `poll_interval` while idle (records that come due by the clock
        alone)."""
        idle_wait = self.first_idle_wait_s
        try:
            while not stop.is_set():
                self.wake.clear()
                free = self.free
                try:
                    claimed = await self.run_once()
                except STORE_TROUBLE as exc:
                    log.warning(
                        "claim_failed", loop=self.name, error_type=exc.type, error=exc.message
                    )
                    claimed = 0
                if claimed:
                    idle_wait = self.first_idle_wait_s
                    if claimed >= free:  # capacity ran out first: more may be due now
                        continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle_wait)
                if self.wake.is_set() and self.wake_coalesce_s > 0:
                    await asyncio.sleep(self.wake_coalesce_s)
                idle_wait = min(self.poll_interval, idle_wait * 2)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Finish or cancel the tasks in flight; a cancelled task hands its lease back."""
        if self.finish_on_stop:
            await self.drain()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)

    async def process(self, item: Item) -> None:
        """One record's task. Never raises: a task of the loop that raised would die unseen;
        a record whose write failed comes due again when its lease ends."""
        try:
            outcome = await self._work_with_heartbeat(item)
            await self.settle(item, outcome)
        except asyncio.CancelledError:
            # Shutting down: hand the record back now rather than when the lease ends.
            await asyncio.shield(self.release(item))
            raise
        except Exception:
            log.exception("task_crashed", loop=self.name)

    async def _work_with_heartbeat(self, item: Item) -> Outcome:
        heartbeat = _Heartbeat(self, item)
        try:
            return await self.work(item)
        finally:
            await heartbeat.stop()


class _Heartbeat(Generic[Item]):
    """Extends one record's lease every third of it while its work runs. A timer rather
    than a task: work that ends before the first extension (a webhook send, most steps)
    settles at once, without waiting for a heartbeat task to notice and end, which on a
    busy event loop costs a few of its turns."""

    def __init__(self, owner: LeasedLoop[Item, Any], item: Item) -> None:
        self.owner = owner
        self.item = item
        self.interval = owner.lease_seconds / 3
        self.writing: asyncio.Task[None] | None = None
        self.stopped = False
        self.timer = asyncio.get_running_loop().call_later(self.interval, self._beat)

    def _beat(self) -> None:
        self.writing = asyncio.create_task(self._extend())

    async def _extend(self) -> None:
        try:
            extended = await self.owner.extend(self.item)
        except STORE_TROUBLE as exc:
            log.warning("lease_extension_failed", loop=self.owner.name, error=exc.message)
            extended = True  # try again at the next beat
        except Exception:
            log.exception("lease_extension_crashed", loop=self.owner.name)
            return
        if not extended:
            log.warning("lease_extension_refused", loop=self.owner.name)
        elif not self.stopped:
            self.timer = asyncio.get_running_loop().call_later(self.interval, self._beat)

    async def stop(self) -> None:
        """No more extensions; one in flight is awaited, never cancelled: an abandoned
        Firestore transaction keeps its document locked until the server times it out."""
        self.stopped = True
        self.timer.cancel()
        if self.writing is not None and not self.writing.done():
            await asyncio.shield(self.writing)

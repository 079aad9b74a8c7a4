"""The leased loop's contract, on an in-memory kind of record: it claims no more than its
free capacity, a heartbeat keeps the lease while work runs, a wake ends its idle wait, and a
stop either hands the leases of unfinished work back or lets that work finish."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tests.support.waiting import eventually
from visgate.orchestrator.leased_loop import LeasedLoop

LEASE_S = 0.15  # the heartbeat extends every 0.05 s


@dataclass
class Record:
    id: int
    started: asyncio.Event = field(default_factory=asyncio.Event)
    may_finish: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryLoop(LeasedLoop[Record, str]):
    name = "memory"

    def __init__(self, due: list[Record], *, concurrency: int = 2) -> None:
        super().__init__(
            owner="unit",
            concurrency=concurrency,
            lease_seconds=LEASE_S,
            poll_interval=60.0,  # only a wake ends an idle wait within a test
            wake=asyncio.Event(),
        )
        self.due = due
        self.claims: list[int] = []  # the limit asked for at each claim
        self.extended: list[int] = []
        self.released: list[int] = []
        self.settled: list[tuple[int, str]] = []
        self.asked = asyncio.Event()
        self.claimed_any = asyncio.Event()

    async def claim(self, limit: int) -> list[Record]:
        self.claims.append(limit)
        self.asked.set()
        taken, self.due = self.due[:limit], self.due[limit:]
        if taken:
            self.claimed_any.set()
        return taken

    async def work(self, item: Record) -> str:
        item.started.set()
        await item.may_finish.wait()
        return f"done {item.id}"

    async def settle(self, item: Record, outcome: str) -> None:
        self.settled.append((item.id, outcome))

    async def extend(self, item: Record) -> bool:
        self.extended.append(item.id)
        return True

    async def release(self, item: Record) -> None:
        self.released.append(item.id)


async def test_claims_only_free_capacity_and_settles_each_record() -> None:
    records = [Record(i) for i in range(3)]
    loop = MemoryLoop(list(records), concurrency=2)

    assert await loop.run_once() == 2
    assert await loop.run_once() == 0  # full: nothing is claimed
    assert loop.claims == [2]
    for record in records[:2]:
        record.may_finish.set()
    await loop.drain()
    assert await loop.run_once() == 1
    records[2].may_finish.set()
    await loop.drain()
    assert loop.settled == [(0, "done 0"), (1, "done 1"), (2, "done 2")]


async def test_a_slot_held_for_a_hand_over_counts_against_capacity() -> None:
    records = [Record(i) for i in range(2)]
    loop = MemoryLoop(list(records), concurrency=2)
    with loop.holding_slot():
        assert loop.free == 1
        assert await loop.run_once() == 1
        assert await loop.run_once() == 0  # full: the held slot and one task
    assert loop.claims == [1]
    assert loop.free == 1
    for record in records:
        record.may_finish.set()
    await loop.drain()


async def test_heartbeat_extends_the_lease_while_work_runs() -> None:
    record = Record(7)
    loop = MemoryLoop([record])
    await loop.run_once()
    await record.started.wait()
    await asyncio.sleep(LEASE_S * 1.2)  # the heartbeat's interval is a third of the lease

    assert loop.extended and set(loop.extended) == {7}
    beats = len(loop.extended)
    record.may_finish.set()
    await loop.drain()
    await asyncio.sleep(LEASE_S)
    assert len(loop.extended) == beats  # it stops with the work


async def test_a_wake_ends_the_idle_wait() -> None:
    class Patient(MemoryLoop):
        first_idle_wait_s = 60.0  # without a wake, the next claim is a minute away

    loop = Patient([])
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    await asyncio.wait_for(loop.asked.wait(), 2)  # found nothing; now idle
    record = Record(1)
    record.may_finish.set()
    loop.due.append(record)
    loop.wake.set()

    await asyncio.wait_for(loop.claimed_any.wait(), 2)
    await asyncio.wait_for(loop.drain(), 2)
    stop.set()
    loop.wake.set()
    await asyncio.wait_for(running, 2)
    assert loop.settled == [(1, "done 1")]


async def test_a_burst_of_wakes_is_claimed_in_a_few_queries() -> None:
    class Coalescing(MemoryLoop):
        first_idle_wait_s = 60.0
        wake_coalesce_s = 0.02

    loop = Coalescing([], concurrency=100)
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    await asyncio.wait_for(loop.asked.wait(), 2)
    records = [Record(i) for i in range(40)]
    for record in records:  # 40 POSTs, each adding a record and poking the loop
        record.may_finish.set()
        loop.due.append(record)
        loop.wake.set()
        await asyncio.sleep(0.001)

    await eventually(lambda: len(loop.settled) == len(records), within=2, what="all settled")
    stop.set()
    loop.wake.set()
    await asyncio.wait_for(running, 2)
    # One query per poke would be 40; the pokes within each 20 ms window share one.
    assert len(loop.claims) <= 8


async def _stopped_mid_work(loop: MemoryLoop, record: Record) -> asyncio.Task[None]:
    """Run the loop until `record`'s work has begun, then tell it to stop."""
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run_forever(stop))
    await asyncio.wait_for(record.started.wait(), 2)
    stop.set()
    loop.wake.set()
    return running


async def test_stop_cancels_unfinished_work_and_hands_its_lease_back() -> None:
    record = Record(3)
    loop = MemoryLoop([record])
    await asyncio.wait_for(await _stopped_mid_work(loop, record), 2)
    assert loop.released == [3]
    assert loop.settled == []
    assert loop.running == 0


async def test_a_loop_that_finishes_on_stop_lets_work_in_flight_end() -> None:
    class Finishing(MemoryLoop):
        finish_on_stop = True

    record = Record(4)
    loop = Finishing([record])
    running = await _stopped_mid_work(loop, record)
    await asyncio.sleep(0.05)
    assert not running.done()  # still waiting for the work in flight
    record.may_finish.set()
    await asyncio.wait_for(running, 2)
    assert loop.settled == [(4, "done 4")]
    assert loop.released == []

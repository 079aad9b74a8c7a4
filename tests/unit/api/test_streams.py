"""`EventStreams`: the caps on open `/events` streams, and one shared store watcher per
deployment instead of a poll per stream."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from visgate.api.streams import EventStreams, StreamSlot
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import DeploymentNotFoundError, RateLimitedError, TransientError
from visgate.domain.status import Status
from visgate.store.repositories import Store

POLL = 0.02


class FakeDeployments:
    """`store.deployments`: counts reads; `fail` raises the next reads' errors in turn."""

    def __init__(self) -> None:
        self.records: dict[str, Deployment] = {}
        self.reads = 0
        self.fail: list[BaseException] = []

    async def get(self, deployment_id: str, *, tenant: str | None = None) -> Deployment:
        self.reads += 1
        if self.fail:
            raise self.fail.pop(0)
        dep = self.records.get(deployment_id)
        if dep is None or dep.tenant != tenant:
            raise DeploymentNotFoundError(f"deployment {deployment_id} not found")
        return dep.model_copy(deep=True)


class FakeStore:
    def __init__(self) -> None:
        self.deployments = FakeDeployments()


@pytest.fixture
def store() -> FakeStore:
    fake = FakeStore()
    fake.deployments.records["dep_1"] = Deployment.new(tenant="t", model_id="a/b", now=0.0)
    return fake


def as_store(fake: FakeStore) -> Store:
    return cast(Store, fake)


def open_slots(streams: EventStreams, key_id: str, n: int) -> list[StreamSlot]:
    return [streams.acquire(key_id) for _ in range(n)]


def test_a_key_over_its_cap_is_refused_with_retry_after() -> None:
    streams = EventStreams(per_key=3, total=100)
    slots = open_slots(streams, "k1", 3)
    with pytest.raises(RateLimitedError) as refused:
        streams.acquire("k1")
    assert "for this key" in refused.value.message
    assert int(refused.value.headers["Retry-After"]) >= 1
    streams.acquire("k2")  # another key is not held up
    slots[0].release()
    streams.acquire("k1")  # a released slot opens again
    assert streams.open_for("k1") == 3


def test_the_instance_cap_counts_every_key() -> None:
    streams = EventStreams(per_key=10, total=4)
    for key_id in ("a", "b", "c", "d"):
        streams.acquire(key_id)
    with pytest.raises(RateLimitedError) as refused:
        streams.acquire("e")
    assert "instance busy" in refused.value.message
    assert "Retry-After" in refused.value.headers


def test_release_is_idempotent() -> None:
    streams = EventStreams(per_key=2, total=2)
    slot = streams.acquire("k")
    slot.release()
    slot.release()
    assert streams.open_streams == 0
    assert streams.open_for("k") == 0
    open_slots(streams, "k", 2)


async def test_streams_on_one_deployment_share_one_read_per_poll(store: FakeStore) -> None:
    streams = EventStreams(per_key=50, total=50)
    slots = open_slots(streams, "k", 20)
    subs = [slot.watch(as_store(store), "t", "dep_1", POLL) for slot in slots]
    assert streams.watchers == 1
    records = await asyncio.gather(*(sub.next() for sub in subs))
    assert all(r is not None and r.id == records[0].id for r in records)  # type: ignore[union-attr]
    await asyncio.sleep(POLL * 10)
    reads = store.deployments.reads
    assert 5 <= reads <= 13  # about one a poll for all 20 subscribers, not 20 a poll
    for slot in slots:
        slot.release()
    assert streams.watchers == 0
    await asyncio.sleep(POLL * 3)
    assert store.deployments.reads <= reads + 1  # nobody subscribes: no more reads


async def test_the_watcher_ends_the_streams_when_the_deployment_settles(store: FakeStore) -> None:
    streams = EventStreams(per_key=5, total=5)
    slot = streams.acquire("k")
    sub = slot.watch(as_store(store), "t", "dep_1", POLL)
    dep = store.deployments.records["dep_1"]
    dep.move_to(Status.selecting_gpu, 1.0)
    dep.move_to(Status.creating_endpoint, 2.0)
    dep.fail(3.0, ErrorInfo(type="WorkerFailedError", message="boom"))
    seen = await sub.next()
    assert seen is not None and seen.status is Status.failed
    assert await sub.next() is None  # nothing more will come
    assert streams.watchers == 0
    reads = store.deployments.reads
    await asyncio.sleep(POLL * 3)
    assert store.deployments.reads == reads
    slot.release()
    assert streams.open_streams == 0


async def test_store_hiccups_keep_watching_and_a_missing_record_ends(store: FakeStore) -> None:
    streams = EventStreams(per_key=5, total=5)
    slot = streams.acquire("k")
    sub = slot.watch(as_store(store), "t", "dep_1", POLL)
    store.deployments.fail = [TransientError("hiccup"), TransientError("hiccup")]
    assert await sub.next() is not None  # after two failed reads
    assert store.deployments.reads == 3
    del store.deployments.records["dep_1"]
    assert await sub.next() is None
    slot.release()


async def test_an_unexpected_error_ends_the_streams(store: FakeStore) -> None:
    streams = EventStreams(per_key=5, total=5)
    slot = streams.acquire("k")
    sub = slot.watch(as_store(store), "t", "dep_1", POLL)
    store.deployments.fail = [RuntimeError("bug")]
    assert await asyncio.wait_for(sub.next(), 1) is None
    slot.release()


async def test_each_tenant_and_deployment_has_its_own_watcher(store: FakeStore) -> None:
    store.deployments.records["dep_2"] = Deployment.new(tenant="t", model_id="c/d", now=0.0)
    streams = EventStreams(per_key=5, total=5)
    slots = open_slots(streams, "k", 3)
    slots[0].watch(as_store(store), "t", "dep_1", POLL)
    slots[1].watch(as_store(store), "t", "dep_2", POLL)
    other = slots[2].watch(as_store(store), "u", "dep_1", POLL)  # not u's: ends at once
    assert streams.watchers == 3
    assert await other.next() is None
    for slot in slots:
        slot.release()
    assert streams.watchers == 0


async def test_closing_ends_every_stream_and_refuses_new_ones(store: FakeStore) -> None:
    streams = EventStreams(per_key=5, total=5)
    slots = open_slots(streams, "k", 3)
    subs = [slot.watch(as_store(store), "t", "dep_1", 60.0) for slot in slots]
    waiting = [asyncio.create_task(sub.next()) for sub in subs]
    await asyncio.sleep(0)
    await streams.aclose()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) == [None, None, None]
    with pytest.raises(RateLimitedError):
        streams.acquire("other")
    late = slots[0]
    late.release()
    assert streams.open_streams == 2

"""The tenant quota under every interleaving Hypothesis can find, on SQLite and on the
Firestore emulator: POSTs (through `deployments.service.create`), deletes whose release
runs, deletes whose release is lost, POSTs that die holding a slot, and the clock jumping
past a slot's lease, all running at once with their store calls interleaved one at a time
(quota_interleaving.py).

After every run the counters are the held slots, every deployment that counts holds a
slot, and no more deployments count than the limit allows; once the leases have run out
and a refusal has recounted, the held slots are exactly the deployments that count."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.store.quota_interleaving import Operation, Scheduler, SteppedBackend
from tests.support.firestore_emulator import PROJECT
from visgate.deployments import service
from visgate.deployments.schemas import CreateDeployment
from visgate.domain.deployment import Deployment
from visgate.domain.errors import QuotaExceededError, TransientError
from visgate.domain.records import ApiKey
from visgate.domain.status import Status
from visgate.services import Services
from visgate.settings import load_settings
from visgate.store.quotas import Limits
from visgate.store.repositories import Store

TENANT = "acme"
LEASE_JUMP_S = 61.0  # past a slot's lease (60 s) and the old code's 60 s grace
OPERATIONS = ("post", "post", "post", "delete", "lose", "crash", "tick")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _counting(store: Store) -> dict[str, Deployment]:
    page = await store.deployments.list(tenant=TENANT, limit=1000)
    return {d.id: d for d in page.items if d.counts_against_quota}


async def _post(services: Services, key: ApiKey, workers: int) -> None:
    body = CreateDeployment(hf_model_id="stabilityai/sdxl-turbo", max_workers=workers)
    try:
        await service.create(services, body, key)
    except (QuotaExceededError, TransientError):
        pass  # refused, or stalled until its slot was reclaimed: it made nothing


async def _delete(store: Store, pick: int, *, release: bool) -> None:
    live = sorted(await _counting(store))
    if not live:
        return
    dep_id = live[pick % len(live)]
    now = time.time()

    def gone(dep: Deployment) -> bool:
        if dep.status is Status.deleted:
            return False  # deleted by another operation meanwhile
        dep.move_to(Status.deleting, now)
        dep.move_to(Status.deleted, now)
        return True

    await store.deployments.mutate(dep_id, gone)
    if release:
        await store.quotas.release(TENANT, dep_id)


async def _crash(store: Store, workers: int, limits: Limits) -> None:
    """A POST that took its slot and died before writing anything else."""
    try:
        await store.quotas.reserve(TENANT, service.new_deployment_id(), workers, limits)
    except QuotaExceededError:
        pass


async def _check(store: Store, limits: Limits, *, settled: bool) -> None:
    counting = await _counting(store)
    held = await store.quotas.held(TENANT)
    usage = await store.quotas.usage(TENANT)
    assert (usage.deployments, usage.workers) == (len(held), sum(held.values())), (
        "the counters are not the held slots",
        usage,
        held,
    )
    assert set(counting) <= set(held), ("a deployment that counts holds no slot", counting, held)
    assert len(counting) <= limits.max_deployments, ("over the limit", counting)
    assert sum(d.max_workers for d in counting.values()) <= limits.max_workers
    if settled:
        assert set(held) == set(counting), ("slots held by nothing", held, counting)


async def _scenario(backend: Any, data: st.DataObject, tmp: Path) -> None:
    clock = Clock()
    scheduler = Scheduler(lambda n: data.draw(st.integers(0, n - 1), label="next"))
    store = Store(SteppedBackend(backend, scheduler), clock=clock)  # type: ignore[arg-type]
    limits = Limits(
        max_deployments=data.draw(st.integers(1, 3), label="max_deployments"),
        max_workers=data.draw(st.integers(2, 5), label="max_workers"),
    )
    key = ApiKey(
        id="k1",
        name="k1",
        tenant=TENANT,
        created_at=clock.now,
        max_deployments=limits.max_deployments,
        max_workers=limits.max_workers,
    )
    services = Services(
        settings=load_settings(VISGATE_DB_PATH=str(tmp / "unused.db")),
        store=store,
        secrets=None,  # type: ignore[arg-type]  (no request here carries a secret)
    )

    async def tick() -> None:
        await scheduler.gate()
        clock.now += LEASE_JUMP_S

    def operation(name: str) -> Operation:
        """The operation `name`, its parameters drawn now, to start when its turn comes."""
        workers = data.draw(st.integers(1, 2), label="workers")
        if name == "post":
            return lambda: _post(services, key, workers)
        if name in ("delete", "lose"):
            pick = data.draw(st.integers(0, 9), label="pick")
            return lambda: _delete(store, pick, release=name == "delete")
        if name == "crash":
            return lambda: _crash(store, workers, limits)
        return tick

    rounds = data.draw(st.integers(1, 3), label="rounds")
    for _ in range(rounds):
        names = data.draw(st.lists(st.sampled_from(OPERATIONS), min_size=2, max_size=6))
        await scheduler.run([operation(n) for n in names])
        await _check(store, limits, settled=False)
    clock.now += LEASE_JUMP_S  # every POST has ended: what they left runs out
    with pytest.raises(QuotaExceededError):  # a refusal recounts
        await store.quotas.reserve(TENANT, "dep_settle", 1, Limits(0, 0))
    await _check(store, limits, settled=True)


def _run(make_backend: Any, data: st.DataObject) -> None:
    """One example. Deployment ids are numbered, not random, so that the same draws make
    the same run (Hypothesis replays a failure to shrink it)."""
    numbers = itertools.count()

    def numbered_id() -> str:
        return f"dep_{next(numbers):04d}"

    async def main() -> None:
        with (
            tempfile.TemporaryDirectory() as tmp,
            mock.patch.object(service, "new_deployment_id", numbered_id),
        ):
            backend = make_backend(Path(tmp))
            try:
                await _scenario(backend, data, Path(tmp))
            finally:
                await backend.aclose()

    asyncio.run(main())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_quota_holds_under_any_interleaving_on_sqlite(data: st.DataObject) -> None:
    from visgate.store.sqlite import SqliteBackend

    _run(lambda tmp: SqliteBackend(tmp / "visgate.db"), data)


@pytest.mark.firestore
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_quota_holds_under_any_interleaving_on_firestore(
    firestore_emulator: Any, data: st.DataObject
) -> None:
    from visgate.store.firestore import FirestoreBackend

    _run(
        lambda tmp: FirestoreBackend(project=PROJECT, prefix=f"q{uuid.uuid4().hex[:10]}_"),
        data,
    )

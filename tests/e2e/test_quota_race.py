"""A tenant at its quota, racing through two `visgate serve` processes on one store: clients
on both POST, delete what they got and POST again, as fast as they can, while a watcher
lists the tenant's deployments. No listing ever shows more active deployments than the
quota allows, and afterwards the store's counters are exactly the held slots."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.firestore_emulator import PROJECT, free_port
from tests.support.stack import Stack, emulator_host_for, run_stack

pytestmark = pytest.mark.slow

LIMIT = 2
RACE_S = 8.0
INACTIVE = {"deleted", "failed"}  # a failed one may still count; never the other way


def _churn(stack: Stack, base_url: str, stop: threading.Event, seen: list[int]) -> None:
    """POST, delete what was made, POST again, until told to stop."""
    with stack.client(base_url) as client:
        while not stop.is_set():
            resp = client.post("/v1/deployments", json={"hf_model_id": "stabilityai/sdxl-turbo"})
            seen.append(resp.status_code)
            if resp.status_code == 202:
                client.delete(f"/v1/deployments/{resp.json()['deployment_id']}")


def _watch(stack: Stack, stop: threading.Event, peaks: list[int]) -> None:
    with stack.client() as client:
        while not stop.is_set():
            items = client.get("/v1/deployments", params={"limit": 100}).json()["items"]
            peaks.append(sum(d["status"] not in INACTIVE for d in items))


def _store_of(stack: Stack, store: str) -> Any:
    from visgate.store.repositories import Store

    if store == "sqlite":
        from visgate.store.sqlite import SqliteBackend

        return Store(SqliteBackend(stack.env["VISGATE_DB_PATH"]))
    from visgate.store.firestore import FirestoreBackend

    prefix = stack.env["FIRESTORE_COLLECTION_PREFIX"]
    return Store(FirestoreBackend(project=PROJECT, prefix=prefix))


async def _settled_counts(stack: Stack, store_kind: str, tenant: str) -> tuple[Any, ...]:
    store = _store_of(stack, store_kind)
    try:
        page = await store.deployments.list(tenant=tenant, limit=1000)
        counting = {d.id for d in page.items if d.counts_against_quota}
        held = await store.quotas.held(tenant)
        usage = await store.quotas.usage(tenant)
        return counting, held, (usage.deployments, usage.workers)
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def test_a_tenant_racing_at_its_quota_through_two_instances_never_passes_it(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    with run_stack(
        tmp_path,
        store=store,
        emulator_host=emulator_host_for(store, request),
        TENANT_MAX_DEPLOYMENTS=str(LIMIT),
    ) as stack:
        instances = [stack.start(), stack.start(port=free_port())]
        stop = threading.Event()
        codes: list[int] = []
        peaks: list[int] = []
        threads = [
            threading.Thread(target=_churn, args=(stack, s.url, stop, codes))
            for s in instances
            for _ in range(2)
        ] + [threading.Thread(target=_watch, args=(stack, stop, peaks))]
        for thread in threads:
            thread.start()
        time.sleep(RACE_S)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

        assert codes.count(202) >= LIMIT and 429 in codes, sorted(set(codes))
        assert set(codes) <= {202, 429}, sorted(set(codes))
        assert peaks and max(peaks) <= LIMIT, max(peaks)

        # Once the deletes have run through, the counters are the held slots, which are
        # the deployments that still count.
        tenant = stack.key["name"]  # a key issued without a tenant is its own tenant
        deadline = time.monotonic() + 30
        while True:
            counting, held, usage = asyncio.run(_settled_counts(stack, store, tenant))
            if set(held) == counting or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert usage == (len(held), sum(held.values())), (usage, held)
        assert set(held) == counting and len(counting) <= LIMIT, (held, counting)

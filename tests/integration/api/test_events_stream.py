"""`GET /v1/deployments/{id}/events` (SSE): each event tells its own status change, and a
stream polls the store at a rate its backend can afford."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from visgate.domain.deployment import ErrorInfo
from visgate.domain.status import Status
from visgate.settings import StoreKind
from visgate.store.base import DEPLOYMENTS


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append({"id": fields.get("id"), "data": json.loads(fields["data"])})
    return events


async def _walk_to_failed(api: Api, dep_id: str) -> None:
    def walk(dep: Any) -> bool:
        dep.move_to(Status.selecting_gpu, time.time())
        dep.move_to(Status.creating_endpoint, time.time())
        dep.fail(time.time(), ErrorInfo(type="WorkerFailedError", message="boom"))
        return True

    await api.services.store.deployments.mutate(dep_id, walk)


async def test_replayed_events_carry_their_own_status(api: Api) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    await _walk_to_failed(api, dep_id)
    resp = await api.client.get(f"/v1/deployments/{dep_id}/events", headers=api.auth())
    assert resp.status_code == 200
    events = parse_sse(resp.text)
    expected = ["validating", "selecting_gpu", "creating_endpoint", "failed"]
    assert [e["data"]["status"] for e in events] == expected
    assert [e["data"]["event_status"] for e in events] == expected
    assert [e["id"] for e in events] == ["1", "2", "3", "4"]
    assert all(e["data"]["error"]["type"] == "WorkerFailedError" for e in events)  # current
    # Resuming replays the rest, each still with its own status.
    resumed = await api.client.get(
        f"/v1/deployments/{dep_id}/events", headers={**api.auth(), "Last-Event-ID": "2"}
    )
    assert [e["data"]["status"] for e in parse_sse(resumed.text)] == expected[2:]


async def test_replayed_events_carry_the_line_their_own_change_wrote(api: Api) -> None:
    """Replayed together, each event still says what its own change found (the hub check,
    the pools), not the record's newest log line."""
    dep_id = (await api.post_deployment()).json()["deployment_id"]

    def walk(dep: Any) -> bool:
        dep.move_to(Status.selecting_gpu, time.time(), "model found; needs about 23.5 GB")
        dep.log(time.time(), "live stock put AMPERE_24 last")
        dep.move_to(Status.creating_endpoint, time.time(), "GPU pools, in order: ADA_24")
        dep.log(time.time(), "endpoint ep-1 on ADA_24")
        dep.fail(time.time(), ErrorInfo(type="WorkerFailedError", message="boom"))
        return True

    await api.services.store.deployments.mutate(dep_id, walk)
    resp = await api.client.get(
        f"/v1/deployments/{dep_id}/events", headers={**api.auth(), "Last-Event-ID": "1"}
    )
    events = [e["data"] for e in parse_sse(resp.text)]
    assert [(e["event_status"], e["event_message"]) for e in events] == [
        ("selecting_gpu", "model found; needs about 23.5 GB"),
        ("creating_endpoint", "GPU pools, in order: ADA_24"),
        ("failed", "failed: WorkerFailedError: boom"),
    ]
    assert {e["last_log"]["message"] for e in events} == {"failed: WorkerFailedError: boom"}


async def _reads_during_a_stream(api: Api, open_s: float) -> int:
    """Deployment reads while a stream waits `open_s` seconds for the deployment to settle."""
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    backend = api.services.store.backend
    real_get = backend.get
    reads = 0

    async def counting_get(kind: str, doc_id: str) -> Any:
        nonlocal reads
        reads += kind == DEPLOYMENTS and doc_id == dep_id
        return await real_get(kind, doc_id)

    backend.get = counting_get  # type: ignore[method-assign]

    async def settle_later() -> None:
        await asyncio.sleep(open_s)
        await _walk_to_failed(api, dep_id)

    settle = asyncio.create_task(settle_later())
    resp = await api.client.get(f"/v1/deployments/{dep_id}/events", headers=api.auth())
    await settle
    backend.get = real_get  # type: ignore[method-assign]
    assert parse_sse(resp.text)[-1]["data"]["status"] == "failed"
    reads -= 2  # the write's own read, and the route's read before streaming
    return reads


@pytest.mark.timeout(30)
async def test_a_stream_on_firestore_polls_about_once_a_second(api: Api) -> None:
    """Each poll is a billed read on Firestore; SQLite keeps the quick 0.25 s poll."""
    assert await _reads_during_a_stream(api, 1.6) >= 4
    # The same store, configured as Firestore would be: the route goes by STORE.
    sqlite_settings = api.services.settings
    api.services.settings = sqlite_settings.model_copy(update={"store": StoreKind.firestore})
    try:
        assert 1 <= await _reads_during_a_stream(api, 1.6) <= 3
    finally:
        api.services.settings = sqlite_settings

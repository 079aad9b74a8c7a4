"""The fake Runpod answers like Runpod where it matters: other tests trust it to catch
what the real API would refuse."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx

from tests.fakes.runpod import API_KEY, FakeRunpod, RunningFakeRunpod
from visgate.providers.runpod import operations as ops

AUTH = {"Authorization": f"Bearer {API_KEY}"}
TEMPLATE = {
    "name": "t-one",
    "imageName": "img:1",
    "containerDiskInGb": 10,
    "volumeInGb": 0,
    "dockerArgs": "",
    "env": [{"key": "A", "value": "1"}],
    "isServerless": True,
}


async def _gql(
    fake: RunningFakeRunpod, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            fake.graphql_url, json={"query": query, "variables": variables or {}}, headers=AUTH
        )


async def _template(fake: RunningFakeRunpod, **changes: Any) -> dict[str, Any]:
    answer = await _gql(fake, ops.SAVE_TEMPLATE_DOC, {"input": {**TEMPLATE, **changes}})
    return answer.json()["data"]["saveTemplate"]


async def test_a_misspelled_field_is_a_graphql_error_at_http_200(fake: RunningFakeRunpod) -> None:
    answer = await _gql(fake, "query { myself { endpoints { id workerMax } } }")

    assert answer.status_code == 200
    assert "Cannot query field 'workerMax'" in answer.json()["errors"][0]["message"]


async def test_void_mutations_take_no_selection_set(fake: RunningFakeRunpod) -> None:
    answer = await _gql(fake, 'mutation { deleteEndpoint(id: "x") { id } }')

    assert "must not have a selection" in answer.json()["errors"][0]["message"]


async def test_bad_key_is_http_401(fake: RunningFakeRunpod) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            fake.graphql_url, json={"query": "{ myself { id } }"}, headers={"Authorization": "x"}
        )

    assert answer.status_code == 401


async def test_template_names_are_unique(fake: RunningFakeRunpod) -> None:
    await _template(fake)

    answer = await _gql(fake, ops.SAVE_TEMPLATE_DOC, {"input": TEMPLATE})

    assert "unique" in answer.json()["errors"][0]["message"]


async def test_save_template_without_docker_args_goes_wrong(fake: RunningFakeRunpod) -> None:
    answer = await _gql(fake, ops.SAVE_TEMPLATE_DOC, {"input": {**TEMPLATE, "dockerArgs": None}})

    assert "Something went wrong" in answer.json()["errors"][0]["message"]


async def test_save_endpoint_with_id_resets_what_it_leaves_out(fake: RunningFakeRunpod) -> None:
    template = await _template(fake)
    base = {"name": "e-one", "templateId": template["id"], "gpuIds": "ADA_24"}
    created = await _gql(
        fake, ops.SAVE_ENDPOINT_DOC, {"input": {**base, "workersMax": 2, "idleTimeout": 99}}
    )
    endpoint_id = created.json()["data"]["saveEndpoint"]["id"]

    updated = await _gql(fake, ops.SAVE_ENDPOINT_DOC, {"input": {**base, "id": endpoint_id}})

    row = updated.json()["data"]["saveEndpoint"]
    assert row["id"] == endpoint_id
    assert (row["workersMax"], row["idleTimeout"]) == (3, 5)  # Runpod's defaults


async def test_deletes_wait_for_zero_workers_and_a_free_template(fake: RunningFakeRunpod) -> None:
    template = await _template(fake)
    created = await _gql(
        fake,
        ops.SAVE_ENDPOINT_DOC,
        {"input": {"name": "e-one", "templateId": template["id"], "gpuIds": "AMPERE_24"}},
    )
    endpoint_id = created.json()["data"]["saveEndpoint"]["id"]

    in_use = await _gql(fake, ops.DELETE_TEMPLATE_DOC, {"templateName": "t-one"})
    busy = await _gql(fake, ops.DELETE_ENDPOINT_DOC, {"id": endpoint_id})

    assert "in use" in in_use.json()["errors"][0]["message"]
    assert "0 min and max workers" in busy.json()["errors"][0]["message"]


def _watch_worker_starts(fake: RunningFakeRunpod) -> tuple[list[dict[str, Any]], threading.Event]:
    seen: list[dict[str, Any]] = []
    called = threading.Event()

    def hook(endpoint: dict[str, Any]) -> None:
        seen.append(endpoint)
        called.set()

    fake.state.on_endpoint_created = hook
    return seen, called


async def _endpoint(fake: RunningFakeRunpod, **changes: Any) -> dict[str, Any]:
    template = await _template(fake)
    answer = await _gql(
        fake,
        ops.SAVE_ENDPOINT_DOC,
        {"input": {"name": "e-one", "templateId": template["id"], "gpuIds": "ADA_24", **changes}},
    )
    return answer.json()["data"]["saveEndpoint"]


def test_an_active_worker_starts_with_the_endpoint_env(fake: RunningFakeRunpod) -> None:
    seen, called = _watch_worker_starts(fake)

    asyncio.run(_endpoint(fake, workersMin=1))

    assert called.wait(5)
    assert seen[0]["name"] == "e-one"
    assert {e["key"]: e["value"] for e in seen[0]["env"]} == {"A": "1"}


def test_a_flex_worker_starts_only_once_a_job_is_queued(fake: RunningFakeRunpod) -> None:
    """Like Runpod: with workersMin=0 no container runs until a job waits."""
    seen, called = _watch_worker_starts(fake)

    async def create_then_run() -> None:
        endpoint = await _endpoint(fake, workersMin=0)
        await asyncio.sleep(0.3)
        assert not called.is_set(), "a flex worker started with no job queued"
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{fake.api_base}/{endpoint['id']}/run", json={"input": {}}, headers=AUTH
            )
        assert answer.status_code == 200

    asyncio.run(create_then_run())

    assert called.wait(5)
    assert seen[0]["name"] == "e-one"


async def test_usable_in_process_through_asgi_transport() -> None:
    fake = FakeRunpod()
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runpod.test") as client:
        answer = await client.post("/graphql", json={"query": "{ gpuTypes { id } }"}, headers=AUTH)
        missing = await client.get("/v2/nope/health", headers=AUTH)

    assert answer.json()["data"]["gpuTypes"]
    assert missing.status_code == 404
    assert fake.state.calls_of("gpuTypes")

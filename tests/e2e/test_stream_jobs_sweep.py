"""What a user sees around a deployment: the SSE status stream (and resuming it), the job
proxy to the endpoint, and the orphan sweeper cleaning endpoints nobody owns."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.fakes.runpod_state import API_KEY
from tests.support.stack import Stack
from tests.support.waiting import wait_for
from visgate.providers.base import EndpointSpec
from visgate.providers.runpod import RunpodProvider

pytestmark = pytest.mark.slow


def _events(client: httpx.Client, dep_id: str, last_id: str | None = None) -> list[Any]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with connect_sse(
        client, "GET", f"/v1/deployments/{dep_id}/events", headers=headers, timeout=60
    ) as source:
        return list(source.iter_sse())


def test_sse_streams_each_status_once_and_closes_at_ready_and_resumes(stack: Stack) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client)
        events = _events(client, dep_id)  # opened at once: follows the deployment live
        statuses = [json.loads(e.data)["event_status"] for e in events]
        assert statuses == [
            "validating",
            "selecting_gpu",
            "creating_endpoint",
            "loading_model",
            "ready",
        ]
        assert json.loads(events[-1].data)["endpoint_url"]
        ids = [int(e.id) for e in events]
        assert ids == sorted(set(ids))

        # Resuming after the third event replays only what came later.
        resumed = _events(client, dep_id, last_id=events[2].id)
        assert [e.id for e in resumed] == [e.id for e in events[3:]]


def test_jobs_proxy_reaches_the_endpoint_with_the_stored_key(stack: Stack) -> None:
    stack.runpod.state.job_handler = lambda job_input: {"echo": job_input["text"].upper()}
    stack.worker.delay = 1.0  # long enough to try a job before ready
    with stack.client() as client:
        dep_id = stack.deploy(client)
        early = client.post(f"/v1/deployments/{dep_id}/jobs/sync", json={"input": {"text": "x"}})
        assert early.status_code == 409
        assert early.json()["error"]["type"] == "DeploymentNotReadyError"

        stack.wait_for(client, dep_id)
        sync = client.post(
            f"/v1/deployments/{dep_id}/jobs/sync", json={"input": {"text": "a small red fox"}}
        )
        assert sync.status_code == 200, sync.text
        assert sync.json()["status"] == "COMPLETED"
        assert sync.json()["output"] == {"echo": "A SMALL RED FOX"}

        queued = client.post(f"/v1/deployments/{dep_id}/jobs", json={"input": {"text": "owl"}})
        job_id = queued.json()["id"]

        def completed() -> dict[str, Any] | None:
            status = client.get(f"/v1/deployments/{dep_id}/jobs/{job_id}").json()
            return status if status["status"] == "COMPLETED" else None

        status = wait_for(completed, what=f"job {job_id} completing")
        assert status["output"] == {"echo": "OWL"}
        cancel = client.post(f"/v1/deployments/{dep_id}/jobs/{job_id}/cancel")
        assert cancel.status_code == 200

    # The serverless calls carried the deployment's Runpod key as a bearer header.
    serverless = [c for c in stack.runpod.state.calls if c.surface == "serverless"]
    assert serverless and all(c.authorization == f"Bearer {API_KEY}" for c in serverless)


def test_sweep_deletes_orphans_and_keeps_live_endpoints(stack: Stack) -> None:
    with stack.client() as client:
        live = stack.deploy(client)
        stack.wait_for(client, live)

    async def make_orphan() -> None:
        provider = RunpodProvider(stack.runpod.graphql_url, stack.runpod.api_base)
        spec = EndpointSpec(
            name="visgate-dep_0000000000000000", image="x", env={}, gpu_pools=["ADA_24"]
        )
        await provider.ensure_endpoint(spec, api_key=API_KEY)
        await provider.aclose()

    asyncio.run(make_orphan())
    dry = stack.cli("sweep", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete visgate-dep_0000000000000000" in dry.stdout
    assert stack.runpod.state.endpoint("visgate-dep_0000000000000000") is not None

    done = stack.cli("sweep")
    assert done.returncode == 0, done.stderr
    assert "1 orphan endpoint(s)" in done.stdout
    assert stack.runpod.state.endpoint("visgate-dep_0000000000000000") is None
    assert stack.runpod.state.endpoint(f"visgate-{live}") is not None

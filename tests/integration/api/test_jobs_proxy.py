"""The jobs proxy (`/v1/deployments/{id}/jobs...`) only ever calls the deployment's own
endpoint: a job id that no Runpod job can have answers 404 before anything goes upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from tests.integration.api.conftest import Api
from tests.integration.api.test_deployments_api import assert_envelope
from visgate.domain.status import Status
from visgate.providers.runpod.provider import RunpodProvider

RUNPOD = "http://runpod.test"
ENDPOINT = "ep_test1"


@pytest.fixture
async def ready_api(make_api: Any) -> AsyncIterator[tuple[Api, str, respx.Route]]:
    """A ready deployment whose endpoint API is a respx mock that records every call."""
    api: Api = await make_api(RUNPOD_API_KEY="rk_operator", RUNPOD_API_BASE=f"{RUNPOD}/v2")
    api.services.provider = RunpodProvider(
        f"{RUNPOD}/graphql", f"{RUNPOD}/v2", retry_attempts=1, max_retry_wait=0.01
    )
    dep_id = (await api.post_deployment()).json()["deployment_id"]

    def make_ready(dep: Any) -> bool:
        for status in (Status.selecting_gpu, Status.creating_endpoint, Status.loading_model):
            dep.move_to(status, time.time())
        dep.endpoint_id = ENDPOINT
        dep.move_to(Status.ready, time.time())
        return True

    await api.services.store.deployments.mutate(dep_id, make_ready)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route(host="runpod.test").mock(
            side_effect=lambda request: httpx.Response(
                200, json={"id": request.url.path.rsplit("/", 1)[-1], "status": "IN_QUEUE"}
            )
        )
        yield api, dep_id, route


@pytest.mark.parametrize(
    "job_id",
    [
        "%2e%2e",  # `..`: would climb to the endpoint's own URL
        "..%2F..%2Fhealth",
        "a%3Fx%3D1",  # `a?x=1`: a query string smuggled upstream
        "a%23frag",
        "a%00b",  # a NUL: httpx refused the URL with InvalidURL (a 500)
        "a%20b",
        "%F0%9F%98%80",
        "x" * 129,
    ],
)
@pytest.mark.parametrize("action", ["status", "cancel"])
async def test_a_job_id_no_job_can_have_answers_404_without_calling_runpod(
    ready_api: tuple[Api, str, respx.Route], job_id: str, action: str
) -> None:
    api, dep_id, route = ready_api
    path = f"/v1/deployments/{dep_id}/jobs/{job_id}"
    if action == "status":
        resp = await api.client.get(path, headers=api.auth())
    else:
        resp = await api.client.post(f"{path}/cancel", headers=api.auth())
    assert_envelope(resp, 404, "NotFoundError")
    assert route.call_count == 0


async def test_real_job_ids_reach_the_endpoint(ready_api: tuple[Api, str, respx.Route]) -> None:
    api, dep_id, route = ready_api
    for job_id in ("sync-0b3c1a2e-8d4f-4c1b-9e2a-1f2e3d4c5b6a-u1", "local-9f8e7d", "a" * 128):
        resp = await api.client.get(f"/v1/deployments/{dep_id}/jobs/{job_id}", headers=api.auth())
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == job_id
        sent = route.calls.last.request
        assert sent.url == f"{RUNPOD}/v2/{ENDPOINT}/status/{job_id}"
        assert sent.headers["authorization"] == "Bearer rk_operator"
    assert route.call_count == 3


async def test_a_bad_job_id_answers_404_before_the_deployment_is_read(api: Api) -> None:
    """No input reaches upstream whatever state the deployment is in."""
    dep_id = (await api.post_deployment()).json()["deployment_id"]  # validating, not ready
    resp = await api.client.get(f"/v1/deployments/{dep_id}/jobs/a%3Fx%3D1", headers=api.auth())
    assert_envelope(resp, 404, "NotFoundError")
    ok_id = await api.client.get(f"/v1/deployments/{dep_id}/jobs/job-1", headers=api.auth())
    assert_envelope(ok_id, 409, "DeploymentNotReadyError")


async def test_a_runpod_key_runpod_rejects_answers_502_not_401(
    ready_api: tuple[Api, str, respx.Route],
) -> None:
    """The caller's Visgate key was fine: a 401 would send them to fix the wrong key."""
    api, dep_id, route = ready_api
    route.side_effect = None
    route.return_value = httpx.Response(401, text="Unauthorized")
    resp = await api.client.get(f"/v1/deployments/{dep_id}/jobs/job-1", headers=api.auth())
    error = assert_envelope(resp, 502, "RunpodAuthError")
    assert "Runpod rejected the API key" in error["message"]
    assert "www-authenticate" not in resp.headers
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", ""), ("post", "/sync"), ("get", "/job-1"), ("post", "/job-1/cancel")],
)
async def test_jobs_on_a_control_plane_with_no_provider_answer_503_in_the_envelope(
    ready_api: tuple[Api, str, respx.Route], method: str, path: str
) -> None:
    """An API-only process has no provider: the caller gets a typed 503 saying so, not a
    500 from a failed assertion (or an AttributeError where assertions are stripped)."""
    api, dep_id, route = ready_api
    api.services.provider = None
    url = f"/v1/deployments/{dep_id}/jobs{path}"
    body = {"json": {"input": {}}} if method == "post" else {}
    resp = await getattr(api.client, method)(url, headers=api.auth(), **body)
    error = assert_envelope(resp, 503, "ProviderNotConfiguredError")
    assert "no GPU provider" in error["message"]
    assert route.call_count == 0

"""`GET /v1/deployments/{id}/logs?source=worker`: what the endpoint's Runpod workers printed,
read through REST v2 from the fake Runpod, bounded, with the deployment's secrets masked."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.fakes.runpod import API_KEY, RunningFakeRunpod, run_fake_runpod
from tests.integration.api.conftest import Api
from tests.integration.api.test_deployments_api import assert_envelope
from visgate.domain.status import Status
from visgate.providers.base import EndpointSpec
from visgate.providers.runpod import RunpodProvider, RunpodRestProvider

HF_TOKEN = "hf_userSecretToken0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningFakeRunpod]:
    with run_fake_runpod() as running:
        yield running


async def _ready_on_fake(api: Api, fake: RunningFakeRunpod) -> tuple[str, str]:
    """A deployment marked ready on an endpoint that exists on the fake Runpod."""
    dep_id = (await api.post_deployment(hf_token=HF_TOKEN)).json()["deployment_id"]
    spec = EndpointSpec(name=f"visgate-{dep_id}", image="img:1", env={}, gpu_pools=["ADA_24"])
    ref = await api.services.provider.ensure_endpoint(spec, api_key=API_KEY, fresh=True)

    def make_ready(dep: Any) -> bool:
        for status in (Status.selecting_gpu, Status.creating_endpoint, Status.loading_model):
            dep.move_to(status, time.time())
        dep.endpoint_id = ref.endpoint_id
        dep.move_to(Status.ready, time.time())
        return True

    await api.services.store.deployments.mutate(dep_id, make_ready)
    return dep_id, ref.endpoint_id


@pytest.fixture
async def rest_api(make_api: Any, fake: RunningFakeRunpod) -> AsyncIterator[Api]:
    fake.state.reset()
    api: Api = await make_api(RUNPOD_API_KEY=API_KEY, RUNPOD_API="rest")
    api.services.provider = RunpodRestProvider(fake.rest_url, fake.api_base, max_retry_wait=0.01)
    yield api
    await api.services.provider.aclose()
    assert fake.state.contract_violations == []


async def test_worker_lines_come_back_newest_last_with_secrets_masked(
    rest_api: Api, fake: RunningFakeRunpod
) -> None:
    dep_id, endpoint_id = await _ready_on_fake(rest_api, fake)
    token = rest_api.services.callback_tokens.token(dep_id)
    fake.state.set_workers(endpoint_id, running=1)
    fake.state.worker_log_lines[endpoint_id] = [
        "starting worker",
        f"env VISGATE_CALLBACK_TOKEN={token} HF_TOKEN={HF_TOKEN}",
        f"runpod key {API_KEY} in a traceback",
        "models loaded",
    ]

    resp = await rest_api.client.get(
        f"/v1/deployments/{dep_id}/logs",
        params={"source": "worker", "lines": 3},
        headers=rest_api.auth(),
    )

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["deployment_id"] == dep_id and body["source"] == "worker"
    lines = [entry["line"] for entry in body["lines"]]
    assert lines == [
        "env VISGATE_CALLBACK_TOKEN=[redacted] HF_TOKEN=[redacted]",
        "runpod key [redacted] in a traceback",
        "models loaded",
    ]
    assert all(entry["worker_id"] and entry["ts"] for entry in body["lines"])
    for secret in (token, HF_TOKEN, API_KEY):
        assert secret not in resp.text


async def test_control_logs_are_the_records_own_lines(
    rest_api: Api, fake: RunningFakeRunpod
) -> None:
    dep_id, _ = await _ready_on_fake(rest_api, fake)
    resp = await rest_api.client.get(
        f"/v1/deployments/{dep_id}/logs", params={"lines": 2}, headers=rest_api.auth()
    )
    view = (await rest_api.client.get(f"/v1/deployments/{dep_id}", headers=rest_api.auth())).json()
    assert resp.json()["lines"] == view["logs"][-2:]


async def test_before_an_endpoint_exists_worker_logs_answer_409(rest_api: Api) -> None:
    dep_id = (await rest_api.post_deployment()).json()["deployment_id"]
    resp = await rest_api.client.get(
        f"/v1/deployments/{dep_id}/logs", params={"source": "worker"}, headers=rest_api.auth()
    )
    assert_envelope(resp, 409, "DeploymentNotReadyError")


@pytest.mark.parametrize("query", [{"lines": 0}, {"lines": 5000}, {"source": "stdout"}])
async def test_bad_parameters_are_422(rest_api: Api, query: dict[str, Any]) -> None:
    dep_id = (await rest_api.post_deployment()).json()["deployment_id"]
    resp = await rest_api.client.get(
        f"/v1/deployments/{dep_id}/logs", params=query, headers=rest_api.auth()
    )
    assert resp.status_code == 422


async def test_another_tenants_deployment_is_404(rest_api: Api, fake: RunningFakeRunpod) -> None:
    dep_id, _ = await _ready_on_fake(rest_api, fake)
    resp = await rest_api.client.get(
        f"/v1/deployments/{dep_id}/logs", params={"source": "worker"}, headers=rest_api.auth("bob")
    )
    assert_envelope(resp, 404, "DeploymentNotFoundError")


async def test_graphql_backend_says_worker_logs_need_rest(
    make_api: Any, fake: RunningFakeRunpod
) -> None:
    fake.state.reset()
    api: Api = await make_api(RUNPOD_API_KEY=API_KEY)
    api.services.provider = RunpodProvider(fake.graphql_url, fake.api_base, max_retry_wait=0.01)
    try:
        dep_id, _ = await _ready_on_fake(api, fake)
        resp = await api.client.get(
            f"/v1/deployments/{dep_id}/logs", params={"source": "worker"}, headers=api.auth()
        )
        assert_envelope(resp, 409, "WorkerLogsUnavailableError")
        assert "RUNPOD_API=rest" in resp.json()["error"]["message"]
    finally:
        await api.services.provider.aclose()

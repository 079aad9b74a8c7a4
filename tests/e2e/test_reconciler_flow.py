"""POST → ready → signed webhook → DELETE, through `visgate serve` against a fake hub, a fake
Runpod and a fake worker that calls back like the real image — once with each Runpod API
(`RUNPOD_API=graphql` and `rest`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.hub_seed import VALID_TOKEN
from tests.support.receivers import FakeWorker
from tests.support.stack import Stack, run_stack
from tests.support.waiting import wait_for
from visgate.webhooks import verify_webhook

pytestmark = pytest.mark.slow

USER_KEY = "rp_user_owned_1a2b3c4d5e6f"  # a deployment's own Runpod key, not the operator's


@pytest.fixture(params=["graphql", "rest"])
def runpod_api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_deployment_goes_ready_then_webhook_is_signed_then_delete_tears_down(
    stack: Stack,
) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, hf_token=VALID_TOKEN)
        ready = stack.wait_for(client, dep_id)
        assert ready["status"] == "ready", ready
        assert ready["endpoint_url"], ready
        assert ready["gpu"] == "NVIDIA L4"

        # The endpoint exists on "Runpod" with the callback env the worker needs.
        env = stack.runpod.state.endpoint_env(f"visgate-{dep_id}")
        assert env["HF_MODEL_ID"] == "stabilityai/sdxl-turbo"
        assert env["VISGATE_WEBHOOK"].endswith(f"/internal/deployment-ready/{dep_id}")
        assert env["HF_TOKEN"] == VALID_TOKEN

        # Statuses were walked in order and are visible in the record's history.
        walked = list(dict.fromkeys(entry["status"] for entry in ready["logs"]))
        assert walked == [
            "validating",
            "selecting_gpu",
            "creating_endpoint",
            "loading_model",
            "ready",
        ]

        # The ready webhook arrives signed with the key's secret and verifies.
        delivery = _wait_delivery(stack, dep_id, "deployment.ready")
        payload = verify_webhook(stack.key["webhook_secret"], delivery.headers, delivery.body)
        assert payload["data"]["deployment_id"] == dep_id
        assert payload["data"]["status"] == "ready"
        assert VALID_TOKEN not in delivery.body.decode()

        assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
        deleted = stack.wait_for(client, dep_id, {"deleted"})
        assert deleted["status"] == "deleted"
        assert stack.runpod.state.endpoint(f"visgate-{dep_id}") is None
        assert stack.runpod.state.template(f"visgate-{dep_id}") is None
        # DELETE is repeatable.
        assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
        _wait_delivery(stack, dep_id, "deployment.deleted")


def _wait_delivery(stack: Stack, dep_id: str, event: str, timeout: float = 20) -> Any:
    wait_for(lambda: f"{dep_id}:{event}" in stack.receiver.by_event(), within=timeout)
    return stack.receiver.by_event()[f"{dep_id}:{event}"][-1]


def test_missing_model_fails_with_its_error_and_creates_nothing(stack: Stack) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, model="nobody/does-not-exist")
        failed = stack.wait_for(client, dep_id)
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "HuggingFaceModelNotFoundError"
        assert stack.runpod.state.creations("endpoint") == []
        payload = json.loads(_wait_delivery(stack, dep_id, "deployment.failed").body)
        assert payload["data"]["error"]["type"] == "HuggingFaceModelNotFoundError"


def test_transient_faults_are_retried_and_recorded(stack: Stack) -> None:
    stack.hub.state.fail_next(4, status=503)
    stack.runpod.state.fail_next(3, status=429, retry_after=0, field="saveEndpoint")
    stack.runpod.state.fail_next(2, status=500, field="saveTemplate")
    with stack.client() as client:
        dep_id = stack.deploy(client)
        ready = stack.wait_for(client, dep_id, timeout=90)
        assert ready["status"] == "ready", ready
    # Exactly one endpoint and one template despite the retries.
    assert len(stack.runpod.state.creations("endpoint")) == 1
    assert len(stack.runpod.state.creations("template")) == 1


def test_webhook_500_then_200_is_retried_until_delivered(stack: Stack) -> None:
    stack.receiver.fail_first = 2
    with stack.client() as client:
        dep_id = stack.deploy(client)
        stack.wait_for(client, dep_id)
        key = f"{dep_id}:deployment.ready"
        wait_for(lambda: len(stack.receiver.by_event().get(key, [])) >= 3)
        time.sleep(1.5)  # past the whole retry schedule: a delivered webhook is not resent
        attempts = stack.receiver.by_event()[key]
        assert len(attempts) == 3
        delivery = attempts[-1]
        # Same webhook-id on every try, so receivers can deduplicate.
        assert len({a.headers["webhook-id"] for a in attempts}) == 1
        verify_webhook(stack.key["webhook_secret"], delivery.headers, delivery.body)
        logs = client.get(f"/v1/deployments/{dep_id}").json()["logs"]
        text = json.dumps(logs)
        assert "try 1 failed" in text and "delivered (try 3)" in text


def test_worker_reporting_failed_fails_the_deployment_and_tears_down(
    tmp_path: Path, runpod_api: str
) -> None:
    with run_stack(tmp_path, worker=FakeWorker(report="failed"), RUNPOD_API=runpod_api) as stack:
        stack.start()
        stack.runpod.state.api_keys.add(USER_KEY)
        with stack.client() as client:
            dep_id = stack.deploy(client, user_runpod_key=USER_KEY)
            failed = stack.wait_for(client, dep_id)
            assert failed["status"] == "failed"
            assert failed["error"]["type"] == "WorkerFailedError"
            assert "out of memory" in failed["error"]["message"]
            wait_for(lambda: stack.runpod.state.endpoint(f"visgate-{dep_id}") is None)
            wait_for(lambda: "cloud resources removed" in json.dumps(_logs(client, dep_id)))

            # Deleting it later needs no key: its own went with the cleanup.
            assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
            deleted = stack.wait_for(client, dep_id, {"deleted"}, timeout=30)
            assert deleted["error"]["type"] == "WorkerFailedError"


def _logs(client: httpx.Client, dep_id: str) -> list[Any]:
    return list(client.get(f"/v1/deployments/{dep_id}").json()["logs"])


def test_silent_worker_times_out_and_tears_down(tmp_path: Path, runpod_api: str) -> None:
    with run_stack(
        tmp_path,
        worker=FakeWorker(report="silent"),
        READY_TIMEOUT_SECONDS="10",
        RUNPOD_API=runpod_api,
    ) as stack:
        stack.start()
        with stack.client() as client:
            dep_id = stack.deploy(client)
            failed = stack.wait_for(client, dep_id, timeout=30)
            assert failed["status"] == "failed"
            assert failed["error"]["type"] == "ReadyTimeoutError"
            wait_for(lambda: stack.runpod.state.endpoint(f"visgate-{dep_id}") is None)


def test_no_capacity_widens_the_endpoint_to_the_next_pools(stack: Stack) -> None:
    with stack.client() as client:
        stack.worker.report = "silent"
        dep_id = stack.deploy(client)
        loading = stack.wait_for(client, dep_id, {"loading_model"})
        first_pools = loading["gpu"].split(",")
        stack.runpod.state.pools_without_capacity.update(first_pools)
        wait_for(
            lambda: client.get(f"/v1/deployments/{dep_id}").json()["gpu"].split(",") != first_pools,
            within=30,
        )
        widened = client.get(f"/v1/deployments/{dep_id}").json()
        endpoint = stack.runpod.state.endpoint(f"visgate-{dep_id}")
        assert endpoint is not None
        assert endpoint["gpuIds"] == widened["gpu"]
        logs = json.dumps(client.get(f"/v1/deployments/{dep_id}").json()["logs"])
        assert "widened the endpoint" in logs


def test_bad_runpod_key_fails_permanently(stack: Stack) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, user_runpod_key="rp_not_a_real_key")
        failed = stack.wait_for(client, dep_id)
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "RunpodAuthError"
        assert "rp_not_a_real_key" not in json.dumps(failed)


def test_delete_during_creation_does_not_leak_the_endpoint(stack: Stack) -> None:
    stack.runpod.state.latency_s = 0.5  # every Runpod call is slow: the create step takes
    stack.runpod.state.api_keys.add(USER_KEY)  # seconds, and DELETE lands in the middle
    with stack.client() as client:
        dep_id = stack.deploy(client, user_runpod_key=USER_KEY)
        creating = stack.wait_for(client, dep_id, {"creating_endpoint", "loading_model", "ready"})
        assert creating["status"] == "creating_endpoint"
        assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
        deleted = stack.wait_for(client, dep_id, {"deleted"}, timeout=60)
    # The delete was recorded while the record still read creating_endpoint...
    walked = list(dict.fromkeys(entry["status"] for entry in deleted["logs"]))
    assert walked[walked.index("deleting") - 1] == "creating_endpoint", walked
    # ...the step it interrupted still made the endpoint, and that endpoint is gone.
    assert stack.runpod.state.created_names("endpoint") == [f"visgate-{dep_id}"]
    wait_for(lambda: stack.runpod.state.endpoints == {}, within=30)
    # Every Runpod call was made with the deployment's own key, never the operator's.
    assert {c.authorization for c in stack.runpod.state.calls} == {f"Bearer {USER_KEY}"}

"""Limits and cost through `visgate serve`, a fake Runpod (both APIs) and a fake worker: the
endpoint gets the worker cap and data centres asked for, the cost route prices the workers
running, a quota slot comes back when a deployment is deleted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.stack import Stack, run_stack

pytestmark = pytest.mark.slow


@pytest.fixture(params=["graphql", "rest"])
def runpod_api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_limits_reach_the_endpoint_and_cost_prices_its_workers(
    stack: Stack, runpod_api: str
) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, max_workers=2, region="EU")
        ready = stack.wait_for(client, dep_id)
        assert ready["status"] == "ready", ready
        assert (ready["max_workers"], ready["region"]) == (2, "EU")
        endpoint = stack.runpod.state.endpoint(f"visgate-{dep_id}")
        assert endpoint is not None and endpoint["workersMax"] == 2
        assert "EU-RO-1" in endpoint["locations"].split(",")
        assert not any(dc.startswith("US") for dc in endpoint["locations"].split(","))

        cost = client.get(f"/v1/deployments/{dep_id}/cost").json()
        assert cost["workers"] >= 1 and cost["price_per_hour"] > 0
        assert cost["spend_source"] == "estimated"
        if runpod_api == "rest":  # Runpod's billing is readable on REST v2
            stack.runpod.state.billed[endpoint["id"]] = 1.25
            billed = client.get(f"/v1/deployments/{dep_id}/cost").json()
            assert (billed["spend"], billed["spend_source"]) == (1.25, "billed")

        assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
        stack.wait_for(client, dep_id, {"deleted"})
        ended = client.get(f"/v1/deployments/{dep_id}/cost").json()
        assert (ended["workers"], ended["price_per_hour"]) == (0, 0.0)
        time.sleep(1.1)
        assert client.get(f"/v1/deployments/{dep_id}/cost").json()["until"] == ended["until"]


def test_a_deleted_deployment_frees_its_quota_slot(tmp_path: Path) -> None:
    with run_stack(tmp_path, TENANT_MAX_DEPLOYMENTS="1") as stack:
        stack.start()
        with stack.client() as client:
            first = stack.deploy(client)
            refused = client.post("/v1/deployments", json={"hf_model_id": "o/m"})
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["type"] == "QuotaExceededError"
            assert client.delete(f"/v1/deployments/{first}").status_code == 204
            stack.wait_for(client, first, {"deleted"})
            second = client.post("/v1/deployments", json={"hf_model_id": "stabilityai/sdxl-turbo"})
            assert second.status_code == 202, second.text

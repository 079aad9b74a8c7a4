"""The /v1/deployments contract as a client sees it (README, "API")."""

from __future__ import annotations

import time

from tests.integration.api.conftest import Api
from visgate.domain.deployment import Deployment, ErrorInfo, TeardownBlocked
from visgate.domain.status import Status


def assert_envelope(resp, status: int, type_: str) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["type"] == type_
    assert error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    return error


async def test_post_answers_202_with_the_contract_fields(api: Api) -> None:
    resp = await api.post_deployment(user_webhook_url="http://127.0.0.1:9/hook")
    assert resp.status_code == 202
    body = resp.json()
    assert set(body) == {
        "deployment_id",
        "status",
        "model_id",
        "estimated_ready_seconds",
        "webhook_url",
        "created_at",
    }
    assert body["status"] == "validating"
    assert body["model_id"] == "stabilityai/sdxl-turbo"
    assert body["webhook_url"] == "http://127.0.0.1:9/hook"
    stored = await api.services.store.deployments.get(body["deployment_id"])
    assert stored.status is Status.validating
    assert stored.due_at is not None and stored.due_at <= time.time()


async def test_get_shows_the_record_to_its_tenant_and_404_to_others(api: Api) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    resp = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    assert resp.status_code == 200
    body = resp.json()
    for field in (
        "deployment_id",
        "status",
        "model_id",
        "gpu",
        "endpoint_id",
        "endpoint_url",
        "logs",
        "error",
        "created_at",
        "updated_at",
        "ready_at",
    ):
        assert field in body
    assert body["logs"][0]["message"].startswith("deployment of stabilityai/sdxl-turbo")
    other = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth("bob"))
    assert_envelope(other, 404, "DeploymentNotFoundError")
    gone = await api.client.delete(f"/v1/deployments/{dep_id}", headers=api.auth("bob"))
    assert_envelope(gone, 404, "DeploymentNotFoundError")


async def test_every_v1_route_needs_a_valid_key(api: Api) -> None:
    routes = [
        ("POST", "/v1/deployments"),
        ("GET", "/v1/deployments"),
        ("GET", "/v1/deployments/dep_x"),
        ("DELETE", "/v1/deployments/dep_x"),
        ("GET", "/v1/deployments/dep_x/events"),
        ("POST", "/v1/deployments/dep_x/jobs"),
        ("GET", "/v1/models"),
        ("GET", "/v1/gpus"),
    ]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        for method, path in routes:
            resp = await api.client.request(method, path, headers=headers, json={})
            assert_envelope(resp, 401, "UnauthorizedError")


async def test_revoked_key_is_refused(api: Api) -> None:
    from visgate.auth.api_keys import revoke_key

    assert (await api.client.get("/v1/deployments", headers=api.auth("bob"))).status_code == 200
    await revoke_key(api.services, "bob")
    api.client._transport.app.state.auth_cache.clear()  # type: ignore[attr-defined]
    resp = await api.client.get("/v1/deployments", headers=api.auth("bob"))
    assert_envelope(resp, 401, "UnauthorizedError")


async def test_list_is_newest_first_with_status_filter_and_cursor(api: Api) -> None:
    ids = [(await api.post_deployment()).json()["deployment_id"] for _ in range(7)]
    await api.post_deployment("bob")
    await api.client.delete(f"/v1/deployments/{ids[2]}", headers=api.auth())

    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/deployments", params=params, headers=api.auth())).json()
        seen += [d["deployment_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    deleting = await api.client.get(
        "/v1/deployments", params={"status": "deleting"}, headers=api.auth()
    )
    assert [d["deployment_id"] for d in deleting.json()["items"]] == [ids[2]]
    bad = await api.client.get("/v1/deployments", params={"status": "nope"}, headers=api.auth())
    assert_envelope(bad, 422, "ValidationError")


async def test_delete_moves_to_deleting_and_is_repeatable(api: Api) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    for _ in range(2):
        resp = await api.client.delete(f"/v1/deployments/{dep_id}", headers=api.auth())
        assert resp.status_code == 204
    body = (await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())).json()
    assert body["status"] == "deleting"


async def test_health_readiness_and_metrics(api: Api) -> None:
    assert (await api.client.get("/health")).json() == {"status": "ok"}
    ready = await api.client.get("/readiness")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    await api.post_deployment()
    text = (await api.client.get("/metrics")).text
    assert 'visgate_deployments{status="validating"} 1.0' in text
    assert 'visgate_http_requests_total{method="POST",route="/v1/deployments",status="202"}' in text
    assert "visgate_http_request_duration_seconds_bucket" in text
    assert "visgate_teardowns_blocked 0.0" in text


async def test_metrics_count_blocked_teardowns(api: Api) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]

    def blocked(d: Deployment) -> None:
        d.teardown_blocked = TeardownBlocked(
            since=time.time(),
            account="user",
            left=[f"endpoint visgate-{dep_id}"],
            error=ErrorInfo(type="RunpodAuthError", message="Runpod rejected the API key"),
        )

    dep = await api.services.store.deployments.mutate(dep_id, blocked)
    await api.services.store.blocked_teardowns.mark(dep)
    text = (await api.client.get("/metrics")).text
    assert "visgate_teardowns_blocked 1.0" in text
    shown = (await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())).json()
    assert shown["teardown_blocked"]["error"]["type"] == "RunpodAuthError"


async def test_readiness_reports_a_store_that_does_not_answer(api: Api) -> None:
    async def broken() -> None:
        from visgate.domain.errors import StoreUnavailableError

        raise StoreUnavailableError("sqlite: unable to open database file")

    api.services.store.ping = broken  # type: ignore[method-assign]
    resp = await api.client.get("/readiness")
    assert resp.status_code == 503 and resp.json()["status"] == "unavailable"

"""`GET /v1/deployments/{id}/deliveries` as a webhook owner reads it: one entry per event,
oldest first, each attempt's answer, the next retry only while one is pending; never another
tenant's, and an empty list for a deployment without a webhook."""

from __future__ import annotations

import time

from tests.integration.api.conftest import Api
from visgate.domain.records import DeliveryAttemptLog
from visgate.kit import iso
from visgate.webhooks.events import EventType, build_delivery, delivery_id

HOOK = "http://127.0.0.1:9/hook"
ITEM_FIELDS = {"webhook_id", "event", "url", "state", "created_at", "next_attempt_at", "attempts"}
ATTEMPT_FIELDS = {"at", "status_code", "ok", "duration_ms", "error"}


async def deployment(api: Api, tenant: str = "alice", **body: str) -> str:
    resp = await api.post_deployment(tenant, **body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["deployment_id"])


async def add_deliveries(api: Api, dep_id: str, t0: float) -> None:
    """Three events' deliveries, stored out of order: `ready` delivered on its second try,
    `failed` given up after 503s, `deleted` waiting for its second try."""
    dep = await api.services.store.deployments.get(dep_id)
    deleted = build_delivery(EventType.deleted, dep, HOOK, t0 + 20)
    deleted.attempts = [DeliveryAttemptLog(at=t0 + 21, error="connection refused")]
    deleted.due_at = t0 + 80
    ready = build_delivery(EventType.ready, dep, HOOK, t0)
    ready.state = "delivered"
    ready.attempts = [
        DeliveryAttemptLog(at=t0 + 1, status_code=500, duration_ms=12.5),
        DeliveryAttemptLog(at=t0 + 31, status_code=200, ok=True, duration_ms=8.0),
    ]
    failed = build_delivery(EventType.failed, dep, HOOK, t0 + 10)
    failed.state = "failed"
    failed.attempts = [DeliveryAttemptLog(at=t0 + 11 + i, status_code=503) for i in range(3)]
    for delivery in (deleted, ready, failed):
        await api.services.store.deliveries.add(delivery)


async def test_each_events_delivery_with_its_attempts_and_next_retry(api: Api) -> None:
    dep_id = await deployment(api, user_webhook_url=HOOK)
    t0 = time.time() - 100
    await add_deliveries(api, dep_id, t0)

    resp = await api.client.get(f"/v1/deployments/{dep_id}/deliveries", headers=api.auth())

    assert resp.status_code == 200
    body = resp.json()
    assert body["deployment_id"] == dep_id
    items = body["items"]
    assert [i["event"] for i in items] == [
        "deployment.ready",
        "deployment.failed",
        "deployment.deleted",
    ]
    for item in items:
        assert set(item) == ITEM_FIELDS  # never the signed body
        assert item["url"] == HOOK
        assert item["webhook_id"] == delivery_id(dep_id, item["event"])
        for attempt in item["attempts"]:
            assert set(attempt) == ATTEMPT_FIELDS
    ready, failed, deleted = items
    assert ready["state"] == "delivered" and ready["next_attempt_at"] is None
    assert [a["status_code"] for a in ready["attempts"]] == [500, 200]
    assert [a["ok"] for a in ready["attempts"]] == [False, True]
    assert ready["attempts"][0]["at"] == iso(t0 + 1)
    assert ready["created_at"] == iso(t0)
    assert failed["state"] == "failed" and failed["next_attempt_at"] is None
    assert [a["status_code"] for a in failed["attempts"]] == [503, 503, 503]
    assert deleted["state"] == "pending"
    assert deleted["next_attempt_at"] == iso(t0 + 80)
    assert deleted["attempts"] == [
        {
            "at": iso(t0 + 21),
            "status_code": None,
            "ok": False,
            "duration_ms": None,
            "error": "connection refused",
        }
    ]


async def test_a_deployment_without_a_webhook_has_no_deliveries(api: Api) -> None:
    dep_id = await deployment(api)

    resp = await api.client.get(f"/v1/deployments/{dep_id}/deliveries", headers=api.auth())

    assert resp.status_code == 200
    assert resp.json() == {"deployment_id": dep_id, "items": []}


async def test_deliveries_are_the_deployments_own(api: Api) -> None:
    with_hook = await deployment(api, user_webhook_url=HOOK)
    other = await deployment(api, user_webhook_url=HOOK)
    await add_deliveries(api, with_hook, time.time())

    resp = await api.client.get(f"/v1/deployments/{other}/deliveries", headers=api.auth())

    assert resp.json() == {"deployment_id": other, "items": []}


async def test_another_tenants_deliveries_are_a_missing_deployment(api: Api) -> None:
    dep_id = await deployment(api, user_webhook_url=HOOK)
    await add_deliveries(api, dep_id, time.time())
    missing = "dep_0000000000000000"

    theirs = await api.client.get(f"/v1/deployments/{dep_id}/deliveries", headers=api.auth("bob"))
    none = await api.client.get(f"/v1/deployments/{missing}/deliveries", headers=api.auth("bob"))

    assert theirs.status_code == none.status_code == 404
    error, expected = theirs.json()["error"], none.json()["error"]
    assert error["type"] == expected["type"] == "DeploymentNotFoundError"
    assert error["message"].replace(dep_id, "ID") == expected["message"].replace(missing, "ID")
    assert HOOK not in theirs.text


async def test_the_route_needs_a_key_and_a_possible_id(api: Api) -> None:
    dep_id = await deployment(api)

    anonymous = await api.client.get(f"/v1/deployments/{dep_id}/deliveries")
    bad_key = await api.client.get(
        f"/v1/deployments/{dep_id}/deliveries", headers={"Authorization": "Bearer vg_nope"}
    )
    impossible = await api.client.get("/v1/deployments/a..b/deliveries", headers=api.auth())

    assert anonymous.status_code == bad_key.status_code == 401
    assert impossible.status_code == 404
    assert impossible.json()["error"]["type"] == "DeploymentNotFoundError"

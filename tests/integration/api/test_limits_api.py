"""POST's limits: `max_workers`, `region`, `ttl_seconds`, and the tenant quotas (429)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from visgate.auth.api_keys import issue_key, revoke_key
from visgate.domain.errors import StoreUnavailableError


class CountingSecrets:
    """The API's secret store, counting what it is asked to keep."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.puts = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, deployment_id: str, name: str, value: str) -> str:
        self.puts += 1
        return await self.inner.put(deployment_id, name, value)


async def _count(api: Api, name: str = "alice") -> int:
    resp = await api.client.get("/v1/deployments?limit=100", headers=api.auth(name))
    return len(resp.json()["items"])


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_workers", -1),
        ("max_workers", 0),
        ("max_workers", 10**9),
        ("max_workers", "2"),
        ("max_workers", 1.5),
        ("max_workers", True),
        ("ttl_seconds", 0),
        ("ttl_seconds", 59),
        ("ttl_seconds", "120"),
        ("ttl_seconds", 30 * 86400 + 1),
        ("region", ""),
        ("region", "X" * 40),
        ("region", "MARS"),
    ],
)
async def test_bad_limits_are_422_naming_the_field_and_create_nothing(
    api: Api, field: str, value: Any
) -> None:
    resp = await api.post_deployment(**{field: value})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["type"] == "ValidationError"
    assert field in {f["field"].split(".")[-1] for f in error["fields"]}
    assert await _count(api) == 0


async def test_whole_numbers_written_as_floats_are_the_integers_they_are(api: Api) -> None:
    """The schema says `integer`, which in JSON includes `2.0`: a generated client that
    sends numbers as floats is served, not refused."""
    resp = await api.post_deployment(max_workers=2.0, ttl_seconds=3600.0)
    assert resp.status_code == 202, resp.text
    got = (
        await api.client.get(f"/v1/deployments/{resp.json()['deployment_id']}", headers=api.auth())
    ).json()
    assert got["max_workers"] == 2
    assert _seconds(got["expires_at"]) - _seconds(got["created_at"]) == pytest.approx(3600)


async def test_unknown_region_names_the_valid_ones(api: Api) -> None:
    resp = await api.post_deployment(region="MARS")
    message = resp.json()["error"]["message"]
    assert "EU" in message and "EU-RO-1" in message and "US-TX-3" in message


async def test_limits_show_on_the_record_and_in_the_list(api: Api) -> None:
    resp = await api.post_deployment(max_workers=2, region="eu", ttl_seconds=3600)
    assert resp.status_code == 202, resp.text
    dep_id = resp.json()["deployment_id"]
    got = (await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())).json()
    assert (got["max_workers"], got["region"]) == (2, "EU")
    assert _seconds(got["expires_at"]) == pytest.approx(_seconds(got["created_at"]) + 3600, abs=1)
    assert got["delete_reason"] is None
    record = await api.services.store.deployments.get(dep_id)
    assert "EU-RO-1" in record.data_center_ids and "EUR-IS-1" in record.data_center_ids
    assert not any(dc.startswith("US") for dc in record.data_center_ids)
    listed = (await api.client.get("/v1/deployments", headers=api.auth())).json()["items"][0]
    assert (listed["max_workers"], listed["region"]) == (2, "EU")

    plain = (await api.post_deployment()).json()["deployment_id"]
    got = (await api.client.get(f"/v1/deployments/{plain}", headers=api.auth())).json()
    assert (got["max_workers"], got["region"], got["expires_at"]) == (1, None, None)


async def test_over_the_deployment_quota_is_429_without_retry_after(make_api: Any) -> None:
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=2)
    for _ in range(2):
        assert (await api.post_deployment()).status_code == 202
    counting = CountingSecrets(api.services.secrets)
    api.services.secrets = counting
    resp = await api.post_deployment(hf_token="hf_refused_secret_value")
    assert resp.status_code == 429, resp.text
    assert "retry-after" not in resp.headers
    error = resp.json()["error"]
    assert error["type"] == "QuotaExceededError"
    assert "2 of 2 active deployments" in error["message"]
    assert await _count(api) == 2 and counting.puts == 0  # no record, no secret
    # Another tenant is not affected.
    assert (await api.post_deployment("bob")).status_code == 202


async def test_over_the_worker_quota_is_429_naming_the_workers(make_api: Any) -> None:
    api: Api = await make_api(TENANT_MAX_WORKERS=3)
    assert (await api.post_deployment(max_workers=2)).status_code == 202
    resp = await api.post_deployment(max_workers=2)
    assert resp.status_code == 429
    assert "2 of 3 workers" in resp.json()["error"]["message"]
    assert (await api.post_deployment(max_workers=1)).status_code == 202


async def test_max_workers_over_the_tenant_cap_is_422(make_api: Any) -> None:
    api: Api = await make_api(TENANT_MAX_WORKERS=3)
    resp = await api.post_deployment(max_workers=4)
    assert resp.status_code == 422
    assert "limit of 3 workers" in resp.json()["error"]["message"]


async def test_a_keys_own_quota_overrides_the_default(make_api: Any) -> None:
    api: Api = await make_api()
    small = await issue_key(api.services, "small", max_deployments=1, max_workers=2)
    headers = {"Authorization": f"Bearer {small.api_key}"}
    body = {"hf_model_id": "stabilityai/sdxl-turbo"}
    assert (await api.client.post("/v1/deployments", json=body, headers=headers)).status_code == 202
    resp = await api.client.post("/v1/deployments", json=body, headers=headers)
    assert resp.status_code == 429 and "1 of 1" in resp.json()["error"]["message"]


async def test_an_idempotent_replay_does_not_take_a_second_slot(make_api: Any) -> None:
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=1)
    headers = {**api.auth(), "Idempotency-Key": "once"}
    body = {"hf_model_id": "stabilityai/sdxl-turbo"}
    first = await api.client.post("/v1/deployments", json=body, headers=headers)
    again = await api.client.post("/v1/deployments", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers.get("idempotent-replayed") == "true"
    assert (await api.post_deployment()).status_code == 429


async def test_a_post_whose_record_cannot_be_written_gives_its_slot_back(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=1)
    store = api.services.store

    async def unavailable(dep: Any, holder: str, **kwargs: Any) -> Any:
        raise StoreUnavailableError("store down")

    monkeypatch.setattr(store.quotas, "bind", unavailable)  # the record's write
    assert (await api.post_deployment()).status_code == 503
    assert await store.quotas.held("alice") == {}
    assert (await store.quotas.usage("alice")).deployments == 0
    monkeypatch.undo()
    assert (await api.post_deployment()).status_code == 202


async def test_a_revoked_keys_deployments_keep_running_and_counting(make_api: Any) -> None:
    """Revoking a key stops its requests, not its deployments: they stay on the tenant's
    quota, another key of the tenant sees and ends them."""
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=1)
    spare = await issue_key(api.services, "alice-2", "alice")
    spare_auth = {"Authorization": f"Bearer {spare.api_key}"}
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    await revoke_key(api.services, "alice")
    api.client._transport.app.state.auth_cache.clear()  # type: ignore[attr-defined]
    assert (
        await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    ).status_code == 401
    listed = await api.client.get("/v1/deployments", headers=spare_auth)
    assert [d["deployment_id"] for d in listed.json()["items"]] == [dep_id]
    body = {"hf_model_id": "stabilityai/sdxl-turbo"}
    refused = await api.client.post("/v1/deployments", json=body, headers=spare_auth)
    assert refused.status_code == 429
    deleted = await api.client.delete(f"/v1/deployments/{dep_id}", headers=spare_auth)
    assert deleted.status_code == 204


async def test_cost_of_a_new_deployment_is_zero_and_tenant_scoped(api: Api) -> None:
    dep_id = (await api.post_deployment()).json()["deployment_id"]
    resp = await api.client.get(f"/v1/deployments/{dep_id}/cost", headers=api.auth())
    assert resp.status_code == 200, resp.text
    cost = resp.json()
    assert cost["deployment_id"] == dep_id and cost["currency"] == "USD"
    assert (cost["workers"], cost["spend"], cost["spend_source"]) == (0, 0.0, "estimated")
    assert cost["price_per_hour"] is None  # no pool chosen yet
    assert _seconds(cost["until"]) >= _seconds(cost["since"])
    other = await api.client.get(f"/v1/deployments/{dep_id}/cost", headers=api.auth("bob"))
    assert other.status_code == 404

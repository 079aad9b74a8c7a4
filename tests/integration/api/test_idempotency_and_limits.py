"""Idempotency-Key (IETF draft / Stripe) and the per-key rate limit."""

from __future__ import annotations

import time

from tests.integration.api.conftest import Api
from tests.integration.api.test_deployments_api import assert_envelope


async def _post(api: Api, key: str, name: str = "alice", **body):
    body.setdefault("hf_model_id", "stabilityai/sdxl-turbo")
    return await api.client.post(
        "/v1/deployments", json=body, headers={**api.auth(name), "Idempotency-Key": key}
    )


async def test_same_key_and_body_replays_without_a_second_deployment(api: Api) -> None:
    first = await _post(api, "k-1", user_runpod_key="rk-1")
    second = await _post(api, "k-1", user_runpod_key="rk-1")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    listing = (await api.client.get("/v1/deployments", headers=api.auth())).json()
    assert len(listing["items"]) == 1


async def test_same_key_other_body_is_422(api: Api) -> None:
    await _post(api, "k-2")
    resp = await _post(api, "k-2", hf_model_id="black-forest-labs/FLUX.1-schnell")
    assert_envelope(resp, 422, "IdempotencyConflictError")
    other_secret = await _post(api, "k-2", user_runpod_key="different")
    assert_envelope(other_secret, 422, "IdempotencyConflictError")


async def test_same_key_while_first_is_in_flight_is_409(api: Api) -> None:
    from visgate.api.routers.deployments import _fingerprint
    from visgate.deployments.schemas import CreateDeployment

    tenant = api.keys["alice"].tenant
    body = CreateDeployment(hf_model_id="stabilityai/sdxl-turbo")
    assert await api.services.store.idempotency.begin(tenant, "k-3", _fingerprint(body)) is None
    resp = await _post(api, "k-3")
    assert_envelope(resp, 409, "IdempotencyConflictError")


async def test_keys_are_scoped_per_tenant(api: Api) -> None:
    a = await _post(api, "shared")
    b = await _post(api, "shared", name="bob")
    assert a.json()["deployment_id"] != b.json()["deployment_id"]


async def test_failed_first_request_releases_the_key(api: Api) -> None:
    bad = await _post(api, "k-4", gpu_tier="nonsense")
    assert bad.status_code == 422
    good = await _post(api, "k-4")
    assert good.status_code == 202


async def test_overlong_key_is_refused(api: Api) -> None:
    resp = await _post(api, "x" * 256)
    assert_envelope(resp, 422, "ValidationError")


async def test_rate_limit_answers_429_with_retry_after(make_api) -> None:
    api = await make_api(RATE_LIMIT_PER_MINUTE=3)
    codes = [
        (await api.client.get("/v1/deployments", headers=api.auth())).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 200]
    resp = await api.client.get("/v1/deployments", headers=api.auth())
    assert_envelope(resp, 429, "RateLimitedError")
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    # another key has its own budget
    assert (await api.client.get("/v1/deployments", headers=api.auth("bob"))).status_code == 200


async def test_other_body_422_names_the_idempotency_key_field(api: Api) -> None:
    await _post(api, "k-fields")
    resp = await _post(api, "k-fields", hf_model_id="black-forest-labs/FLUX.1-schnell")
    error = assert_envelope(resp, 422, "IdempotencyConflictError")
    assert [f["field"] for f in error["fields"]] == ["Idempotency-Key"]
    assert error["fields"][0]["message"]


async def test_a_255_character_key_is_accepted_and_replays(api: Api) -> None:
    key = "k" * 255
    first = await _post(api, key)
    second = await _post(api, key)
    assert first.status_code == second.status_code == 202, first.text
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"


async def test_a_key_whose_first_request_died_is_free_again_after_its_lease(api: Api) -> None:
    """A crash between claiming the key and answering must not block it for a day."""
    from visgate.api.routers.deployments import _fingerprint
    from visgate.deployments.schemas import CreateDeployment
    from visgate.store.idempotency import IDEMPOTENCY_IN_FLIGHT_LEASE_S

    now = [time.time()]
    api.services.store.idempotency.clock = lambda: now[0]
    tenant = api.keys["alice"].tenant
    body = CreateDeployment(hf_model_id="stabilityai/sdxl-turbo")
    assert await api.services.store.idempotency.begin(tenant, "k-died", _fingerprint(body)) is None
    # ... and the process that claimed it is gone.
    assert_envelope(await _post(api, "k-died"), 409, "IdempotencyConflictError")
    now[0] += IDEMPOTENCY_IN_FLIGHT_LEASE_S + 1
    retry = await _post(api, "k-died")
    assert retry.status_code == 202, retry.text
    replay = await _post(api, "k-died")
    assert replay.status_code == 202 and replay.json() == retry.json()
    assert replay.headers.get("idempotent-replayed") == "true"

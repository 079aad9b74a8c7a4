"""POSTs that are slow or fail part-way still make exactly one deployment per
Idempotency-Key, keep their quota slot while they run, and answer for what exists.

Leases are shortened (a fraction of a second instead of 60 s) so that a secret store made
slow stalls a create well past them without the test waiting a minute."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from visgate.api.idempotency import IdempotentCall
from visgate.domain.errors import IdempotencyConflictError, StoreUnavailableError
from visgate.store import idempotency as idempotency_module
from visgate.store import quotas as quotas_module
from visgate.store.base import DEPLOYMENTS

LEASE_S = 0.3
STALL_S = 1.5  # five leases


class SlowSecrets:
    """The configured secret store, each `put` taking `STALL_S` (a slow Secret Manager)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def put(self, deployment_id: str, name: str, value: str) -> str:
        await asyncio.sleep(STALL_S)
        return str(await self.inner.put(deployment_id, name, value))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency_module, "IDEMPOTENCY_IN_FLIGHT_LEASE_S", LEASE_S)
    monkeypatch.setattr(quotas_module, "_RESERVATION_GRACE_S", LEASE_S, raising=False)


def _shorten(api: Api) -> None:
    api.services.store.idempotency.claim_lease_s = LEASE_S  # type: ignore[attr-defined]
    api.services.store.quotas.slot_lease_s = LEASE_S  # type: ignore[attr-defined]


async def _post(api: Api, key: str | None, **body: Any) -> Any:
    body.setdefault("hf_model_id", "stabilityai/sdxl-turbo")
    headers = {**api.auth(), **({"Idempotency-Key": key} if key else {})}
    return await api.client.post("/v1/deployments", json=body, headers=headers)


async def _listed(api: Api) -> list[str]:
    page = (await api.client.get("/v1/deployments", headers=api.auth())).json()
    return [d["deployment_id"] for d in page["items"]]


async def test_a_create_slower_than_its_claim_lease_makes_one_deployment(
    make_api: Any, short_leases: None
) -> None:
    api: Api = await make_api()
    _shorten(api)
    api.services.secrets = SlowSecrets(api.services.secrets)  # type: ignore[assignment]
    first = asyncio.create_task(_post(api, "slow", user_runpod_key="rk-1"))
    await asyncio.sleep(STALL_S / 2)  # the first is still storing its secret, past its lease
    retry = await _post(api, "slow", user_runpod_key="rk-1")
    answer = await first
    assert answer.status_code == 202, answer.text
    dep_id = answer.json()["deployment_id"]
    assert retry.status_code == 409 or retry.json()["deployment_id"] == dep_id, retry.text
    again = await _post(api, "slow", user_runpod_key="rk-1")
    assert again.status_code == 202 and again.json()["deployment_id"] == dep_id
    assert await _listed(api) == [dep_id]


async def test_a_slow_post_keeps_its_quota_slot_until_it_ends(
    make_api: Any, short_leases: None
) -> None:
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=1)
    _shorten(api)
    api.services.secrets = SlowSecrets(api.services.secrets)  # type: ignore[assignment]
    slow = asyncio.create_task(_post(api, None, user_runpod_key="rk-1"))
    await asyncio.sleep(STALL_S / 2)
    other = await _post(api, None)  # no secret: fast; the slow one still holds the last slot
    assert other.status_code == 429, other.text
    assert (await slow).status_code == 202
    assert len(await _listed(api)) == 1


async def test_a_failed_completion_answers_202_and_a_retry_gets_the_same_deployment(
    make_api: Any, short_leases: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    api: Api = await make_api()
    _shorten(api)
    records = api.services.store.idempotency

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("store hiccup")

    with monkeypatch.context() as patch:
        patch.setattr(records, "complete", unavailable)
        first = await _post(api, "k-done")
    assert first.status_code == 202, first.text  # the deployment exists: it is the answer
    dep_id = first.json()["deployment_id"]
    at_once = await _post(api, "k-done")
    await asyncio.sleep(LEASE_S * 2)  # the first request's claim has long run out
    later = await _post(api, "k-done")
    for retry in (at_once, later):
        assert retry.status_code == 202, retry.text
        assert retry.json()["deployment_id"] == dep_id
        assert retry.headers.get("idempotent-replayed") == "true"
    assert await _listed(api) == [dep_id]


async def test_abandon_after_a_takeover_leaves_the_new_holders_claim(api: Api) -> None:
    now = [time.time()]
    records = api.services.store.idempotency
    records.clock = lambda: now[0]
    tenant = api.keys["alice"].tenant

    def call() -> IdempotentCall:
        return IdempotentCall(records, tenant, "k-taken", "fp")

    dead = call()
    assert await dead.begin() is None
    now[0] += idempotency_module.IDEMPOTENCY_IN_FLIGHT_LEASE_S + 1  # it stopped renewing
    taker = call()
    assert await taker.begin() is None
    await dead.abandon()  # the stalled first request gives up late
    with pytest.raises(IdempotencyConflictError) as raised:
        await call().begin()
    assert raised.value.in_flight  # 409: the taker still holds the key


async def test_a_record_written_by_a_commit_whose_answer_was_lost_is_the_answer(
    make_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record's write commits but its answer times out: the POST reads back and
    answers 202; the slot and the secrets stay with the deployment."""
    api: Api = await make_api(TENANT_MAX_DEPLOYMENTS=1)
    backend = api.services.store.backend
    armed = [True]

    def lose_the_answer(method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            before = sum((await backend.count_by_status(DEPLOYMENTS)).values())
            result = await method(*args, **kwargs)
            after = sum((await backend.count_by_status(DEPLOYMENTS)).values())
            if armed[0] and after > before:
                armed[0] = False
                raise StoreUnavailableError("deadline exceeded")
            return result

        return call

    for name in ("insert", "transaction"):
        if hasattr(backend, name):
            monkeypatch.setattr(backend, name, lose_the_answer(getattr(backend, name)))
    resp = await _post(api, None, user_runpod_key="rk-1")
    assert resp.status_code == 202, resp.text
    dep_id = resp.json()["deployment_id"]
    monkeypatch.undo()
    assert await api.services.store.quotas.held(api.keys["alice"].tenant) == {dep_id: 1}
    dep = await api.services.store.deployments.get(dep_id)
    assert await api.services.secrets.get(dep.secret_refs["runpod_api_key"]) == "rk-1"
    assert (await _post(api, None)).status_code == 429

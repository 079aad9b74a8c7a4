"""A flood of made-up API keys from one address: each costs a store read only until the
address's budget is spent, then answers 429; the keys real clients use keep working."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Api
from visgate.api.ratelimit import MemoryRateLimiter


@pytest.fixture
def store_reads(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every API-key lookup that reached the store."""
    reads: list[str] = []
    real = api.services.store.api_keys.by_hash

    async def counted(key_hash: str) -> Any:
        reads.append(key_hash)
        return await real(key_hash)

    monkeypatch.setattr(api.services.store.api_keys, "by_hash", counted)
    return reads


def _app(api: Api) -> Any:
    return api.client._transport.app  # type: ignore[attr-defined]


async def test_made_up_keys_meet_429_once_the_address_spends_its_budget(
    api: Api, store_reads: list[str]
) -> None:
    _app(api).state.auth_failures = MemoryRateLimiter(20)
    assert (await api.client.get("/v1/deployments", headers=api.auth())).status_code == 200

    answers = [
        (await api.client.get("/v1/models", headers={"Authorization": f"Bearer vg_guess_{i}"}))
        for i in range(40)
    ]
    assert [a.status_code for a in answers[:20]] == [401] * 20
    assert {a.status_code for a in answers[20:]} == {429}
    assert answers[-1].json()["error"]["type"] == "RateLimitedError"
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert len(store_reads) == 1 + 20  # alice once, then only the guesses within budget

    # The real key still works from this address, and was never pushed out of the cache.
    assert (await api.client.get("/v1/deployments", headers=api.auth())).status_code == 200
    assert len(store_reads) == 21


async def test_a_repeated_bad_key_is_read_from_the_store_once(
    api: Api, store_reads: list[str]
) -> None:
    headers = {"Authorization": "Bearer vg_not_a_key"}
    for _ in range(5):
        assert (await api.client.get("/v1/models", headers=headers)).status_code == 401
    assert len(store_reads) == 1

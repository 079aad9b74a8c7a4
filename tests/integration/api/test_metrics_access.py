"""`/metrics` is the operator's: a local scrape or the metrics token, never the public; and
a scrape costs the store a count at most every half minute, however often it comes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.support.clock import ManualClock


def _app(api: Api) -> Any:
    return api.client._transport.app  # type: ignore[attr-defined]


async def test_a_forwarded_or_remote_request_cannot_read_the_metrics(api: Api) -> None:
    local = await api.client.get("/metrics")
    assert local.status_code == 200
    assert "visgate_http_requests_total" in local.text
    for headers in ({"X-Forwarded-For": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.5"}):
        refused = await api.client.get("/metrics", headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "ForbiddenError"
        assert "VISGATE_METRICS_TOKEN" in refused.json()["error"]["message"]


async def test_with_a_token_only_its_bearer_reads_the_metrics(make_api: Any) -> None:
    api: Api = await make_api(VISGATE_METRICS_TOKEN="metrics-token-0123456789")
    assert (await api.client.get("/metrics")).status_code == 401
    assert (await api.client.get("/metrics", headers=api.auth())).status_code == 401
    good = await api.client.get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"}
    )
    assert good.status_code == 200
    assert "visgate_teardowns_blocked" in good.text


async def test_counts_by_status_are_read_at_most_once_per_half_minute(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real = api.services.store.deployments.count_by_status

    async def counted() -> dict[str, int]:
        reads.append(1)
        return await real()

    monkeypatch.setattr(api.services.store.deployments, "count_by_status", counted)
    clock = ManualClock(1_000.0)
    _app(api).state.store_gauges.clock = clock
    created = await api.client.post(
        "/v1/deployments", json={"hf_model_id": "stabilityai/sdxl-turbo"}, headers=api.auth()
    )
    assert created.status_code == 202, created.text
    for _ in range(20):
        text = (await api.client.get("/metrics")).text
    assert len(reads) == 1
    assert 'visgate_deployments{status="validating"} 1.0' in text
    clock.advance(31)
    await api.client.get("/metrics")
    assert len(reads) == 2

"""Cursor pagination over 10,000 deployments: every item exactly once, newest first, and
still so while other requests insert deployments between pages."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.integration.api.conftest import Api
from visgate.domain.deployment import Deployment, ErrorInfo, new_deployment_id

TOTAL = 10_000


async def _seed(api: Api, tenant: str, count: int, base: float) -> list[str]:
    """Insert through the store (10k POSTs would be slow); every two records share a
    timestamp, so the order must break ties by id."""
    deps = [
        Deployment.new(
            id=new_deployment_id(),
            tenant=tenant,
            key_id=api.keys[tenant].api_key[:8],
            model_id="org/model",
            now=base + (i // 2) * 0.001,
        )
        for i in range(count)
    ]
    for start in range(0, count, 500):
        await asyncio.gather(
            *(api.services.store.deployments.create(d) for d in deps[start : start + 500])
        )
    return [d.id for d in deps]


async def _page_all(
    api: Api, limit: int, after_page: Callable[[], Awaitable[None]] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = await api.client.get("/v1/deployments", params=params, headers=api.auth())
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if after_page is not None:
            await after_page()
        if not cursor:
            return items


async def test_ten_thousand_deployments_page_without_gaps_or_repeats(make_api: Any) -> None:
    api: Api = await make_api(RATE_LIMIT_PER_MINUTE=1_000_000)
    base = time.time() - 3600
    old = set(await _seed(api, "alice", TOTAL, base=base))
    await _seed(api, "bob", 50, base=base)  # another tenant's rows interleave

    inserted: list[str] = []

    async def insert_between_pages() -> None:
        """After each page: a real POST (newest of all), and a record back-dated into the
        middle of the listing, as a writer with a skewed clock would make. (Run from the
        pager, not a task racing it: a racing task got only some pages in, at random.)"""
        resp = await api.post_deployment(hf_model_id="org/racing")
        assert resp.status_code == 202, resp.text
        inserted.append(resp.json()["deployment_id"])
        inserted.extend(await _seed(api, "alice", 1, base=base + random.uniform(0, TOTAL / 2000)))

    items = await _page_all(api, limit=100, after_page=insert_between_pages)
    ids = [d["deployment_id"] for d in items]
    assert len(inserted) >= 200  # two writes between every two pages
    assert len(ids) == len(set(ids)), "an item was repeated across pages"
    missing = old - set(ids)
    assert not missing, f"{len(missing)} old items missing, e.g. {sorted(missing)[:3]}"
    assert set(ids) - old <= set(inserted)  # nothing foreign (bob's) appeared
    created = [d["created_at"] for d in items]
    assert created == sorted(created, reverse=True), "not newest first"


async def test_small_pages_and_a_status_filter_agree_with_one_big_listing(make_api: Any) -> None:
    """Page sizes 1..7 over 60 records (some failed) give the same sequence as limit=100."""
    api: Api = await make_api(RATE_LIMIT_PER_MINUTE=1_000_000)
    ids = await _seed(api, "alice", 60, base=time.time() - 60)

    def fail(dep: Deployment) -> bool:
        dep.fail(time.time(), ErrorInfo(type="TestError", message="failed on purpose"))
        return True

    for dep_id in ids[::3]:
        await api.services.store.deployments.mutate(dep_id, fail)
    whole = [d["deployment_id"] for d in await _page_all(api, limit=100)]
    assert sorted(whole) == sorted(ids)
    for limit in range(1, 8):
        assert [d["deployment_id"] for d in await _page_all(api, limit=limit)] == whole
    failed: list[str] = []
    cursor = None
    while True:
        params = {"status": "failed", "limit": 4, **({"cursor": cursor} if cursor else {})}
        body = (await api.client.get("/v1/deployments", params=params, headers=api.auth())).json()
        failed += [d["deployment_id"] for d in body["items"]]
        assert all(d["status"] == "failed" for d in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert failed == [i for i in whole if i in set(ids[::3])]

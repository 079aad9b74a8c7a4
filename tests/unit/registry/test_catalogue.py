"""The catalogue follows the provider's live GPU list and survives its failures."""

from __future__ import annotations

import json

from visgate.domain.errors import RunpodUnavailableError
from visgate.providers.base import GpuType
from visgate.registry.catalogue import GpuCatalogue
from visgate.registry.gpu_data import POOLS
from visgate.registry.gpus import public_gpus, select_pools


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetch:
    def __init__(self, answers: list[list[GpuType] | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    async def __call__(self) -> list[GpuType]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def vram(catalogue: GpuCatalogue, pool: str) -> float:
    return next(p.vram_gb for p in catalogue.pools() if p.id == pool)


async def test_live_data_overrides_the_static_table() -> None:
    catalogue = GpuCatalogue(clock=Clock())
    live = [
        GpuType("NVIDIA RTX A4000", "RTX A4000", 20),
        GpuType("NVIDIA RTX A4500", "RTX A4500", 20),
        GpuType("ADA_80_PRO", "H100 pool", 94),
    ]
    assert await catalogue.refresh(Fetch([live]))
    assert catalogue.source == "live"
    assert vram(catalogue, "AMPERE_16") == 20  # smallest live member
    assert vram(catalogue, "ADA_80_PRO") == 94  # a pool id entry wins
    assert vram(catalogue, "AMPERE_24") == 24  # not reported: static figure kept
    # Selection follows: an 18 GB model now fits the cheapest pool.
    assert select_pools(18.0, catalogue=catalogue)[0] == "AMPERE_16"
    assert public_gpus(catalogue)[0]["vram_gb"] == 20


async def test_a_failed_refresh_keeps_the_static_table() -> None:
    catalogue = GpuCatalogue(clock=Clock())
    assert not await catalogue.refresh(Fetch([RunpodUnavailableError("down")]))
    assert catalogue.source == "static"
    assert catalogue.pools() == tuple(sorted(POOLS, key=lambda p: p.price_rank))
    assert select_pools(21.7, catalogue=catalogue) == ["AMPERE_24", "ADA_24", "AMPERE_48"]


async def test_an_empty_answer_is_not_trusted() -> None:
    catalogue = GpuCatalogue(clock=Clock())
    assert not await catalogue.refresh(Fetch([[]]))
    assert catalogue.source == "static"


async def test_refresh_respects_the_ttl_and_keeps_live_data_through_failures() -> None:
    clock = Clock()
    catalogue = GpuCatalogue(clock=clock, ttl_s=600, retry_after_s=60)
    fetch = Fetch([[GpuType("NVIDIA L4", "L4", 22.5)], RuntimeError("boom")])
    await catalogue.refresh(fetch)
    await catalogue.refresh(fetch)
    assert fetch.calls == 1  # within the TTL
    clock.now += 601
    assert await catalogue.refresh(fetch)  # failed, but the last live table stays
    assert fetch.calls == 2 and catalogue.source == "live"
    assert vram(catalogue, "AMPERE_24") == 22.5
    await catalogue.refresh(fetch)
    assert fetch.calls == 2  # a failure waits retry_after_s
    clock.now += 61
    await catalogue.refresh(fetch)
    assert fetch.calls == 3
    await catalogue.refresh(fetch, force=True)
    assert fetch.calls == 4


def test_public_gpus_is_json_and_cheapest_first() -> None:
    items = json.loads(json.dumps(public_gpus()))
    assert [i["price_rank"] for i in items] == sorted(i["price_rank"] for i in items)
    assert {i["id"] for i in items} == {
        "AMPERE_16",
        "AMPERE_24",
        "ADA_24",
        "ADA_32_PRO",
        "AMPERE_48",
        "ADA_48_PRO",
        "AMPERE_80",
        "ADA_80_PRO",
        "BLACKWELL_96",
        "HOPPER_141",
        "BLACKWELL_180",
    }
    l4 = next(i for i in items if i["id"] == "AMPERE_24")
    assert l4["vram_gb"] == 24 and "L4" in l4["gpus"] and {"24gb", "l4"} <= set(l4["gpu_tiers"])

"""Live stock levels order the pools: a fitting pool without stock goes after those with
some, is never dropped, and the catalogue keeps the last known levels through failures."""

from __future__ import annotations

from tests.unit.registry.test_catalogue import Clock, Fetch
from visgate.domain.errors import RunpodUnavailableError
from visgate.providers.base import GpuType
from visgate.registry.catalogue import GpuCatalogue
from visgate.registry.gpu_data import POOLS, GpuPool
from visgate.registry.gpus import select_pools, selection, widen_pools

MODEL_GB = 20.0  # fits both 24 GB pools (AMPERE_24 is the cheaper one)


def stock(**levels: str | None) -> list[GpuType]:
    """One live entry per pool, as REST v2 reports it (`pool` set), with its stock level."""
    by_id = {p.id: p for p in POOLS}
    return [
        GpuType(by_id[pool].gpu_type_ids[0], pool, by_id[pool].vram_gb, pool=pool, availability=lv)
        for pool, lv in levels.items()
    ]


async def live_catalogue(live: list[GpuType]) -> GpuCatalogue:
    catalogue = GpuCatalogue(clock=Clock())
    assert await catalogue.refresh(Fetch([live]))
    return catalogue


def pool(catalogue: GpuCatalogue, pool_id: str) -> GpuPool:
    return next(p for p in catalogue.pools() if p.id == pool_id)


async def test_the_cheaper_pool_without_stock_goes_last_and_is_said() -> None:
    catalogue = await live_catalogue(stock(AMPERE_24="NONE", ADA_24="HIGH"))
    chosen = selection(MODEL_GB, "24gb", catalogue=catalogue)
    assert chosen.pools == ["ADA_24", "AMPERE_24"]  # never dropped, only last
    assert chosen.note == "put last for lack of stock on Runpod: AMPERE_24 (NONE)"
    # Without a tier, pricier pools with stock (or unknown stock) come first.
    assert select_pools(MODEL_GB, catalogue=catalogue) == ["ADA_24", "AMPERE_48", "ADA_48_PRO"]


async def test_without_stock_anywhere_the_order_stays_cheapest_first() -> None:
    catalogue = await live_catalogue(stock(AMPERE_24="NONE", ADA_24="NONE"))
    chosen = selection(MODEL_GB, "24gb", catalogue=catalogue)
    assert chosen.pools == ["AMPERE_24", "ADA_24"]
    assert chosen.note == (
        "no stock on Runpod in any pool that fits, kept cheapest first: "
        "AMPERE_24 (NONE), ADA_24 (NONE)"
    )


async def test_unknown_or_any_stock_keeps_cheapest_first() -> None:
    sizes_only = await live_catalogue([GpuType("NVIDIA L4", "L4", 24)])
    low = await live_catalogue(stock(AMPERE_24="LOW", ADA_24="HIGH", AMPERE_48="MEDIUM"))
    for catalogue in (GpuCatalogue(), sizes_only, low):
        chosen = selection(MODEL_GB, catalogue=catalogue)
        assert chosen.pools == ["AMPERE_24", "ADA_24", "AMPERE_48"]
        assert chosen.note is None


async def test_a_pool_has_the_best_stock_of_its_gpu_types() -> None:
    catalogue = await live_catalogue(
        [
            GpuType("NVIDIA L4", "L4", 24, availability="NONE", price_per_hour=0.69),
            GpuType("NVIDIA RTX A5000", "A5000", 24, availability="low", price_per_hour=0.72),
            GpuType("NVIDIA GeForce RTX 4090", "4090", 24, availability="NONE"),
            GpuType("NVIDIA GeForce RTX 3090", "3090", 24, pool="ADA_24", availability="HIGH"),
            GpuType("AMPERE_48", "48 GB pool", 48, availability="NONE", price_per_hour=1.22),
            GpuType("NVIDIA RTX A6000", "A6000", 48, availability="HIGH"),
            GpuType("NVIDIA L40", "L40", 48, availability="PLENTY"),
        ]
    )
    # A member with stock gives the pool stock; case is ignored.
    assert pool(catalogue, "AMPERE_24").availability == "LOW"
    assert pool(catalogue, "AMPERE_24").price_per_hour == 0.69  # the cheapest member's
    # The live list's own `pool` wins over the static membership.
    assert pool(catalogue, "ADA_24").availability == "HIGH"
    # An entry with the pool's id speaks for the whole pool.
    assert pool(catalogue, "AMPERE_48").availability == "NONE"
    assert pool(catalogue, "AMPERE_48").price_per_hour == 1.22
    # An unrecognised level counts as not reported; unreported pools keep static figures.
    assert pool(catalogue, "ADA_48_PRO").availability is None
    assert pool(catalogue, "AMPERE_80") == next(p for p in POOLS if p.id == "AMPERE_80")


async def test_a_failed_refresh_keeps_the_last_known_stock() -> None:
    clock = Clock()
    catalogue = GpuCatalogue(clock=clock, ttl_s=3600, stock_ttl_s=300, retry_after_s=60)
    fetch = Fetch([stock(AMPERE_24="NONE"), RunpodUnavailableError("down")])
    assert await catalogue.refresh(fetch)
    clock.now += 299
    assert not catalogue.due()
    clock.now += 2  # stock goes stale sooner than sizes: due again after stock_ttl_s
    assert catalogue.due()
    assert await catalogue.refresh(fetch)  # failed; the live table stays in use
    assert fetch.calls == 2
    assert pool(catalogue, "AMPERE_24").availability == "NONE"
    assert select_pools(MODEL_GB, "24gb", catalogue=catalogue) == ["ADA_24", "AMPERE_24"]


async def test_sizes_only_keep_the_long_ttl() -> None:
    clock = Clock()
    catalogue = GpuCatalogue(clock=clock, ttl_s=3600, stock_ttl_s=300)
    await catalogue.refresh(Fetch([[GpuType("NVIDIA L4", "L4", 24)]]))
    clock.now += 301
    assert not catalogue.due()


async def test_widening_puts_pools_without_stock_last_and_follows_price() -> None:
    catalogue = await live_catalogue(stock(AMPERE_80="NONE", ADA_24="NONE"))
    # ADA_24 lost its stock after selection: the cut past the priciest pool still follows
    # price, so widening goes on to the next pools instead of seeing nothing left.
    wider = widen_pools(["AMPERE_24", "ADA_24", "AMPERE_48"], MODEL_GB, catalogue=catalogue)
    assert wider == ["ADA_48_PRO", "ADA_80_PRO", "AMPERE_80"]

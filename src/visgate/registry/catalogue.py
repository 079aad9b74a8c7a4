"""The GPU pool catalogue in use: the static table, overlaid with the provider's live answer.

Runpod's pool members and sizes drift; the live GPU list corrects VRAM figures when it
can be had, and where the backend reports them it adds each pool's stock level and price.
When it cannot be had, selection must still work, so every failure falls back to the last
good table (the static one at first, with unknown stock) and is only logged.

Stock moves within minutes while sizes change over months, so once the live list reports
stock the catalogue comes due again after `stock_ttl_s` (5 min) instead of `ttl_s` (1 h).
The fetch still happens only in the selection step and at most once per that interval,
shared by every deployment: one catalogue lives on the process's `Services`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

import structlog

from visgate.providers.base import GpuType
from visgate.registry.gpu_data import POOLS, GpuPool

log = structlog.get_logger(__name__)

Fetch = Callable[[], Awaitable[list[GpuType]]]


# Stock levels, worst to best; anything else a provider sends counts as not reported.
STOCK_LEVELS: tuple[str, ...] = ("NONE", "LOW", "MEDIUM", "HIGH")
NO_STOCK = "NONE"


def _stock(level: str | None) -> str | None:
    normal = level.upper() if level else None
    return normal if normal in STOCK_LEVELS else None


def _members(pool: GpuPool, live: Iterable[GpuType]) -> list[GpuType]:
    """The live entries that speak for `pool`: those naming it as their pool, and its static
    members that name no other pool (the live list's own pool wins over our table)."""
    return [
        g
        for g in live
        if g.id != pool.id and (g.pool == pool.id or (g.pool is None and g.id in pool.gpu_type_ids))
    ]


def overlay(pools: Iterable[GpuPool], live: Iterable[GpuType]) -> tuple[GpuPool, ...]:
    """Pools with the live list's figures: an entry with the pool's id wins, else its members.

    VRAM is the smallest member's, price the cheapest member's, stock the best member's (a
    pool has stock when any of its GPU types has). Pools the live list says nothing about
    keep their static figures and unknown stock: a missing entry means "not reported", not
    "gone".
    """
    live = list(live)
    by_id = {g.id: g for g in live}
    out: list[GpuPool] = []
    for pool in pools:
        own = by_id.get(pool.id)
        speakers = [own] if own is not None else _members(pool, live)
        if not speakers:
            out.append(pool)
            continue
        levels = [lv for g in speakers if (lv := _stock(g.availability)) is not None]
        prices = [g.price_per_hour for g in speakers if g.price_per_hour is not None]
        out.append(
            replace(
                pool,
                vram_gb=float(min(g.memory_gb for g in speakers)),
                availability=max(levels, key=STOCK_LEVELS.index) if levels else None,
                price_per_hour=min(prices) if prices else None,
            )
        )
    return tuple(out)


def by_price(pools: Iterable[GpuPool]) -> tuple[GpuPool, ...]:
    return tuple(sorted(pools, key=lambda p: p.price_rank))


# The static table, cheapest first: what a caller without a live catalogue selects from.
STATIC_POOLS = by_price(POOLS)


def pools_of(catalogue: GpuCatalogue | None) -> tuple[GpuPool, ...]:
    """The catalogue's pools; the static table when no catalogue is given."""
    return STATIC_POOLS if catalogue is None else catalogue.pools()


class GpuCatalogue:
    """Pools, cheapest first, refreshed from a provider at most once per `ttl_s` (once per
    `stock_ttl_s` while the provider reports stock levels)."""

    def __init__(
        self,
        pools: Iterable[GpuPool] = POOLS,
        *,
        ttl_s: float = 3600.0,
        stock_ttl_s: float = 300.0,
        retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = by_price(pools)
        self._pools = self._static
        self._ttl_s = ttl_s
        self._stock_ttl_s = min(stock_ttl_s, ttl_s)
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._next_refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.source = "static"

    def pools(self) -> tuple[GpuPool, ...]:
        return self._pools

    def due(self) -> bool:
        return self._clock() >= self._next_refresh_at

    async def refresh(self, fetch: Fetch, *, force: bool = False) -> bool:
        """Overlay the provider's GPU types when due; True if live data is now in use.

        Never raises for the fetch's sake: on failure (or an empty answer) the current
        table stays, last known stock levels included, and the next try waits
        `retry_after_s`.
        """
        async with self._lock:
            if not force and not self.due():
                return self.source == "live"
            try:
                live = await fetch()
            except Exception as exc:  # any provider failure: keep serving the table we have
                log.warning(
                    "gpu_catalogue_refresh_failed", error=type(exc).__name__, source=self.source
                )
                self._next_refresh_at = self._clock() + self._retry_after_s
                return self.source == "live"
            if not live:
                log.warning("gpu_catalogue_refresh_empty", source=self.source)
                self._next_refresh_at = self._clock() + self._retry_after_s
                return self.source == "live"
            self._pools = overlay(self._static, live)
            self.source = "live"
            stocked = any(p.availability is not None for p in self._pools)
            ttl = self._stock_ttl_s if stocked else self._ttl_s
            self._next_refresh_at = self._clock() + ttl
            log.info("gpu_catalogue_refreshed", gpu_types=len(live), stock=stocked)
            return True

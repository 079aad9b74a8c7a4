"""The GPU pool catalogue in use: the static table, overlaid with the provider's live answer.

Runpod's pool members and sizes drift; the live `gpuTypes` list corrects VRAM figures
when it can be had. When it cannot, selection must still work, so every failure falls
back to the last good table (the static one at first) and is only logged.
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


def overlay(pools: Iterable[GpuPool], live: Iterable[GpuType]) -> tuple[GpuPool, ...]:
    """Pools with VRAM from the live list: a pool id entry wins, else its smallest live member.

    Pools the live list says nothing about keep their static figures: a missing entry
    means "not reported", not "gone".
    """
    by_id = {g.id: g for g in live}
    out: list[GpuPool] = []
    for pool in pools:
        if pool.id in by_id:
            out.append(replace(pool, vram_gb=float(by_id[pool.id].memory_gb)))
            continue
        members = [by_id[m].memory_gb for m in pool.gpu_type_ids if m in by_id]
        if members:
            out.append(replace(pool, vram_gb=float(min(members))))
        else:
            out.append(pool)
    return tuple(out)


class GpuCatalogue:
    """Pools, cheapest first, refreshed from a provider at most once per `ttl_s`."""

    def __init__(
        self,
        pools: Iterable[GpuPool] = POOLS,
        *,
        ttl_s: float = 3600.0,
        retry_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = tuple(sorted(pools, key=lambda p: p.price_rank))
        self._pools = self._static
        self._ttl_s = ttl_s
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
        table stays, and the next try waits `retry_after_s`.
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
            self._next_refresh_at = self._clock() + self._ttl_s
            log.info("gpu_catalogue_refreshed", gpu_types=len(live))
            return True

    def reset(self) -> None:
        """Back to the static table (tests, or an operator distrusting the live data)."""
        self._pools = self._static
        self.source = "static"
        self._next_refresh_at = 0.0


# The catalogue selection uses unless told otherwise; the service refreshes it.
default_catalogue = GpuCatalogue()

"""GPU selection: which Runpod pools, in which order, for a model of a given size.

Rules (docs/models-and-gpus.md explains them to users):
- A pool fits when the estimate is at most its VRAM (24.0 GB fits a 24 GB pool: the
  estimate already carries the runtime headroom).
- Fitting pools go cheapest first, at most three (Runpod's priority list per endpoint).
  Where the live catalogue reports stock, pools with none (`NONE`) go after every pool
  with some (or unknown stock), still cheapest first among each group; they are never
  dropped, since Runpod creates the endpoint anyway and holds the workers until a GPU
  frees, and when every fitting pool lacks stock the order stays cheapest first.
- A `gpu_tier` pins the pools to that tier; too small a tier is refused, naming the
  smallest size tier that fits.
- When the chosen pools have no capacity, `widen_pools` moves on to the next ones.

Every function takes the catalogue to read (the service passes its live one); without one
it reads the static table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from visgate.domain.errors import RunpodInsufficientGPUError, ValidationError
from visgate.registry.catalogue import NO_STOCK, GpuCatalogue, pools_of
from visgate.registry.gpu_data import MAX_POOLS_PER_ENDPOINT, POOLS, SIZE_TIERS, GpuPool


def _norm(name: str) -> str:
    """`"RTX 4090"`, `"rtx-4090"` and `"RTX_4090"` name the same tier."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _tier_table() -> dict[str, str]:
    """Normalized alias → canonical tier (a size tier like `24gb`, or a pool id)."""
    table: dict[str, str] = {}
    for size in SIZE_TIERS:
        table[_norm(size)] = size
    for pool in POOLS:
        table[_norm(pool.id)] = pool.id
        for alias in pool.aliases:
            table[_norm(alias)] = pool.id
    return table


_TIERS = _tier_table()


def tier_names() -> list[str]:
    """Every tier name accepted, canonical ones first (size tiers, then pool ids), then GPU names."""
    names = [*SIZE_TIERS, *(p.id for p in POOLS)]
    names += [a for p in POOLS for a in p.aliases]
    return names


def resolve_tier(gpu_tier: str) -> str:
    """The canonical tier for a name a user sent; `ValidationError` listing valid ones if unknown."""
    canonical = _TIERS.get(_norm(gpu_tier))
    if canonical is None:
        raise ValidationError(
            f"unknown gpu_tier {gpu_tier!r}; valid tiers: {', '.join(tier_names())}",
            fields=[{"field": "gpu_tier", "message": "unknown GPU tier"}],
        )
    return canonical


def tier_pools(gpu_tier: str) -> tuple[str, ...]:
    canonical = resolve_tier(gpu_tier)
    return SIZE_TIERS.get(canonical, (canonical,))


def smallest_size_tier(vram_gb: float, pools: Iterable[GpuPool] = POOLS) -> str | None:
    """The smallest memory-size tier with a pool that fits `vram_gb`, or None."""
    vram_of = {p.id: p.vram_gb for p in pools}
    fitting = [
        (max(vram_of.get(p, 0.0) for p in members), size)
        for size, members in SIZE_TIERS.items()
        if max(vram_of.get(p, 0.0) for p in members) >= vram_gb
    ]
    return min(fitting)[1] if fitting else None


def _check_estimate(vram_gb: float) -> None:
    if not math.isfinite(vram_gb) or vram_gb <= 0:
        raise ValueError(f"a VRAM estimate must be a positive number of GB, not {vram_gb!r}")


def _fitting(vram_gb: float, gpu_tier: str | None, catalogue: GpuCatalogue | None) -> list[GpuPool]:
    _check_estimate(vram_gb)
    pools = pools_of(catalogue)
    allowed = set(tier_pools(gpu_tier)) if gpu_tier else None
    fitting = [p for p in pools if p.vram_gb >= vram_gb and (allowed is None or p.id in allowed)]
    if fitting:
        return fitting
    largest = max(p.vram_gb for p in pools)
    if vram_gb > largest:
        raise RunpodInsufficientGPUError(
            f"the model needs about {vram_gb:.1f} GB of GPU memory; the largest Runpod "
            f"serverless GPU has {largest:.0f} GB"
        )
    assert gpu_tier is not None  # without a tier, some pool fits whenever the largest does
    tier_vram = max(p.vram_gb for p in pools if allowed and p.id in allowed)
    fits = smallest_size_tier(vram_gb, pools)
    raise RunpodInsufficientGPUError(
        f"gpu_tier {gpu_tier!r} has {tier_vram:.0f} GB of GPU memory but the model needs "
        f"about {vram_gb:.1f} GB; the smallest tier that fits is {fits!r}"
    )


def fitting_pools(
    vram_gb: float, gpu_tier: str | None = None, *, catalogue: GpuCatalogue | None = None
) -> list[str]:
    """Every pool that fits, cheapest first, within the tier when one is given.

    Raises `RunpodInsufficientGPUError` when none does, naming what would fit.
    """
    return [p.id for p in _fitting(vram_gb, gpu_tier, catalogue)]


def _stock_order(pools: list[GpuPool]) -> list[GpuPool]:
    """Pools with stock (or unknown stock) first, then those with none; a stable sort keeps
    cheapest first within each group."""
    return sorted(pools, key=lambda p: p.availability == NO_STOCK)


@dataclass(frozen=True, slots=True)
class Selection:
    """An endpoint's pools and, when stock changed their order, the line the log gets."""

    pools: list[str]
    note: str | None = None


def _stock_note(fitting: list[GpuPool]) -> str | None:
    """Names the pools stock moved behind pricier ones, or says no fitting pool has stock."""
    empty = [p for p in fitting if p.availability == NO_STOCK]
    if not empty:
        return None

    def listed(pools: list[GpuPool]) -> str:
        return ", ".join(f"{p.id} ({p.availability})" for p in pools)

    if len(empty) == len(fitting):
        return f"no stock on Runpod in any pool that fits, kept cheapest first: {listed(empty)}"
    last_stocked = max(i for i, p in enumerate(fitting) if p.availability != NO_STOCK)
    moved = [p for p in empty if fitting.index(p) < last_stocked]
    return f"put last for lack of stock on Runpod: {listed(moved)}" if moved else None


def selection(
    vram_gb: float,
    gpu_tier: str | None = None,
    exclude: Iterable[str] = (),
    *,
    catalogue: GpuCatalogue | None = None,
) -> Selection:
    """Up to three pools for an endpoint's `gpuIds`: pools with stock first, cheapest first.

    `exclude` holds pools the provider reported without capacity: the next ones are used.
    """
    fitting = _fitting(vram_gb, gpu_tier, catalogue)
    skipped = set(exclude)
    remaining = [p for p in _stock_order(fitting) if p.id not in skipped]
    if not remaining:
        raise RunpodInsufficientGPUError(
            f"no capacity on any GPU pool that fits a {vram_gb:.1f} GB model "
            f"({', '.join(p.id for p in fitting)}); try again later"
        )
    pools = [p.id for p in remaining[:MAX_POOLS_PER_ENDPOINT]]
    return Selection(pools, _stock_note([p for p in fitting if p.id not in skipped]))


def select_pools(
    vram_gb: float,
    gpu_tier: str | None = None,
    exclude: Iterable[str] = (),
    *,
    catalogue: GpuCatalogue | None = None,
) -> list[str]:
    """The pools of `selection`, without its log line."""
    return selection(vram_gb, gpu_tier, exclude, catalogue=catalogue).pools


def widen_pools(
    current: list[str],
    vram_gb: float,
    gpu_tier: str | None = None,
    *,
    catalogue: GpuCatalogue | None = None,
) -> list[str] | None:
    """The pools to try next when `current` stalls, or None when nothing is left.

    Moves past the priciest pool in `current` to the next fitting ones, cheapest first;
    free slots keep the priciest current pools, so capacity returning there still counts.
    The cut follows price, not stock: stock changes between calls and would otherwise make
    a pool look already passed (or not yet tried); the new list then puts pools without
    stock last, as selection does.
    """
    pools = _fitting(vram_gb, gpu_tier, catalogue)
    fitting = [p.id for p in pools]
    tried = [p for p in current if p in fitting]
    last = max((fitting.index(p) for p in tried), default=-1)
    untried = fitting[last + 1 :]
    if not untried:
        return None
    new = untried[:MAX_POOLS_PER_ENDPOINT]
    keep = sorted(tried, key=fitting.index, reverse=True)[: MAX_POOLS_PER_ENDPOINT - len(new)]
    order = [p.id for p in _stock_order(pools)]
    return sorted([*new, *keep], key=order.index)


def public_gpus(catalogue: GpuCatalogue | None = None) -> list[dict[str, Any]]:
    """`GET /v1/gpus`: pools cheapest first, with the tier names that select each."""
    size_of = {p: size for size, members in SIZE_TIERS.items() for p in members}
    return [
        {
            "id": p.id,
            "vram_gb": p.vram_gb,
            "gpus": list(p.gpus),
            "price_rank": p.price_rank,
            "flex_usd_per_second": p.flex_usd_per_second,
            "stock": p.availability,  # NONE|LOW|MEDIUM|HIGH once the live list reports it
            "gpu_tiers": [size_of[p.id], p.id, *p.aliases]
            if p.id in size_of
            else [p.id, *p.aliases],
        }
        for p in pools_of(catalogue)
    ]

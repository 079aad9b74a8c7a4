"""Unit prices: which pool serves a deployment, and what one of its workers costs per hour.

The price is the catalogue's serverless list price for the pool (live where the provider
reports it, else the published flex price per second x 3600). Runpod bills every worker that
is up, so workers starting, idle or busy are counted; throttled ones (waiting for a GPU) and
unhealthy ones are not.
"""

from __future__ import annotations

from visgate.domain.deployment import Deployment
from visgate.providers.base import WorkerCounts
from visgate.registry.catalogue import GpuCatalogue, pools_of
from visgate.registry.gpu_data import GpuPool


def billed_workers(workers: WorkerCounts) -> int:
    return workers.initializing + workers.idle + workers.ready + workers.running


def pool_price_per_hour(pool: GpuPool) -> float | None:
    if pool.price_per_hour is not None:
        return pool.price_per_hour
    if pool.flex_usd_per_second is not None:
        return round(pool.flex_usd_per_second * 3600, 6)
    return None


def serving_pool(dep: Deployment, catalogue: GpuCatalogue | None = None) -> GpuPool | None:
    """The pool of the GPU the worker reported (e.g. "NVIDIA GeForce RTX 4090"), else the
    first of the endpoint's pools while no worker has said which GPU it runs on."""
    pools = {p.id: p for p in pools_of(catalogue)}
    if dep.gpu:
        reported = dep.gpu.strip().lower()
        for pool_id in dep.gpu_pools or list(pools):
            pool = pools.get(pool_id)
            names = (*pool.gpus, *pool.gpu_type_ids) if pool else ()
            if any(reported == name.lower() for name in names):
                return pool
    return pools.get(dep.gpu_pools[0]) if dep.gpu_pools else None


def unit_price_per_hour(dep: Deployment, catalogue: GpuCatalogue | None = None) -> float | None:
    """USD per worker-hour of the pool serving `dep`; None when unknown or unpriced."""
    pool = serving_pool(dep, catalogue)
    return pool_price_per_hour(pool) if pool else None

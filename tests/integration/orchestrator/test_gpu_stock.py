"""The selection step uses the live stock levels: a fitting pool with none goes last on the
endpoint, and the deployment's log says which and why."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.conftest import USER_KEY, Plane
from visgate.domain.status import Status
from visgate.providers.base import GpuType

LIVE = [
    GpuType("NVIDIA L4", "L4", 24, pool="AMPERE_24", availability="NONE"),
    GpuType("NVIDIA RTX A5000", "RTX A5000", 24, pool="AMPERE_24", availability="NONE"),
    GpuType("NVIDIA GeForce RTX 4090", "RTX 4090", 24, pool="ADA_24", availability="MEDIUM"),
]


async def test_a_pool_without_stock_goes_last_and_the_log_says_so(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    async def gpu_types(*, api_key: str) -> list[GpuType]:
        asked.append(api_key)
        return LIVE

    assert plane.services.provider is not None
    monkeypatch.setattr(plane.services.provider, "gpu_types", gpu_types)
    dep = await plane.place(
        Status.selecting_gpu,
        vram_gb=20.0,
        gpu_tier="24gb",
        secrets={"runpod_api_key": USER_KEY},
    )
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert asked == [USER_KEY]
    assert fresh.gpu_pools == ["ADA_24", "AMPERE_24"]
    messages = [e.message for e in fresh.logs]
    assert "put last for lack of stock on Runpod: AMPERE_24 (NONE)" in messages
    assert "GPU pools, in order: ADA_24, AMPERE_24" in messages

    await plane.run()  # creating_endpoint: Runpod gets the same priority list
    endpoint = plane.endpoint(fresh)
    assert endpoint is not None and endpoint["gpuIds"] == "ADA_24,AMPERE_24"


async def test_without_stock_figures_nothing_is_said(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gpu_types(*, api_key: str) -> list[GpuType]:
        return [GpuType(g.id, g.display_name, g.memory_gb) for g in LIVE]

    assert plane.services.provider is not None
    monkeypatch.setattr(plane.services.provider, "gpu_types", gpu_types)
    dep = await plane.place(Status.selecting_gpu, vram_gb=20.0, gpu_tier="24gb")
    await plane.run()
    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.gpu_pools == ["AMPERE_24", "ADA_24"]
    assert not any("stock" in e.message for e in fresh.logs)

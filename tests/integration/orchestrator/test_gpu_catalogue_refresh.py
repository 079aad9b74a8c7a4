"""GPU selection uses Runpod's live `gpuTypes` sizes when it can get them (fetched with the
deployment's key) and the static table when it cannot."""

from __future__ import annotations

import pytest

from tests.fakes import runpod_state
from tests.integration.orchestrator.conftest import USER_KEY, Plane
from visgate.domain.status import Status
from visgate.registry.gpus import public_gpus

MODEL_GB = 22.0  # fits a 24 GB pool, not a 20 GB one


def _vram(plane: Plane, pool_id: str) -> float:
    items = public_gpus(plane.services.catalogue)
    return next(float(p["vram_gb"]) for p in items if p["id"] == pool_id)


async def test_live_gpu_sizes_reach_selection_and_the_gpu_list(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runpod now reports the L4 (AMPERE_24's only listed member) with 20 GB.
    live = [dict(g) for g in runpod_state.GPU_TYPES]
    for gpu in live:
        if gpu["id"] == "NVIDIA L4":
            gpu["memoryInGb"] = 20
    monkeypatch.setattr(runpod_state, "GPU_TYPES", live)
    dep = await plane.place(
        Status.selecting_gpu, vram_gb=MODEL_GB, secrets={"runpod_api_key": USER_KEY}
    )
    await plane.run()

    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.creating_endpoint
    assert "AMPERE_24" not in fresh.gpu_pools  # 20 GB no longer fits a 22 GB model
    assert _vram(plane, "AMPERE_24") == 20.0  # GET /v1/gpus shows the live figure
    asked = plane.runpod.state.calls_of("gpuTypes")
    assert asked and all(c.authorization == f"Bearer {USER_KEY}" for c in asked)


async def test_failing_gpu_list_leaves_selection_on_the_static_table(plane: Plane) -> None:
    plane.runpod.state.fail_next(100, status=503, field="gpuTypes")
    dep = await plane.place(Status.selecting_gpu, vram_gb=MODEL_GB)
    await plane.run()

    fresh = await plane.store.deployments.get(dep.id)
    assert fresh.status is Status.creating_endpoint
    assert fresh.gpu_pools[0] == "AMPERE_24"  # the static 24 GB
    assert plane.services.catalogue.source == "static"
    assert plane.runpod.state.calls_of("gpuTypes")  # it did try

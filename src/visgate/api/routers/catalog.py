"""`GET /v1/models` and `GET /v1/gpus`: what can be deployed, and on what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visgate.api.deps import CurrentKey, ServicesDep
from visgate.api.schemas import ERROR_RESPONSES
from visgate.registry.gpus import public_gpus
from visgate.registry.models import public_models

router = APIRouter(prefix="/v1", tags=["catalog"], responses=ERROR_RESPONSES)


@router.get("/models")
async def list_models(key: CurrentKey) -> dict[str, Any]:
    """The model spec registry: measured VRAM, tasks, gating, and the source of each figure."""
    return {"items": public_models()}


@router.get("/gpus")
async def list_gpus(key: CurrentKey, services: ServicesDep) -> dict[str, Any]:
    """Runpod serverless GPU pools, cheapest first, with the `gpu_tier` names they answer to
    (live sizes and prices once the reconciler has read the provider's list)."""
    return {"items": public_gpus(services.catalogue)}

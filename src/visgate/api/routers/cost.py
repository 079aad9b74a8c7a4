"""`GET /v1/deployments/{id}/cost`: price per hour now, and spend so far (billed or estimated)."""

from __future__ import annotations

import time

from fastapi import APIRouter

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES, DeploymentCost
from visgate.cost.report import cost_report

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)


@router.get("/{deployment_id}/cost", response_model=DeploymentCost)
async def deployment_cost(
    deployment_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, object]:
    """What the deployment costs per hour now and has cost since it was created (USD)."""
    require_deployment_id(deployment_id)
    dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    return await cost_report(services, dep, time.time())

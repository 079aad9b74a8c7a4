"""`POST /internal/deployment-ready/{id}`: the worker image reports progress, ready or failed.

Authenticated by the per-deployment token the worker got as `VISGATE_CALLBACK_TOKEN`
(an HMAC of the id): a token for one deployment is worthless for another.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from visgate.api.deps import ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES
from visgate.deployments import service
from visgate.deployments.schemas import WorkerCallback
from visgate.domain.errors import UnauthorizedError

router = APIRouter(prefix="/internal", tags=["internal"], responses=ERROR_RESPONSES)


@router.post("/deployment-ready/{deployment_id}")
async def worker_callback(
    deployment_id: str, body: WorkerCallback, request: Request, services: ServicesDep
) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not services.callback_tokens.check(
        deployment_id, token.strip()
    ):
        raise UnauthorizedError("invalid callback token for this deployment")
    require_deployment_id(deployment_id)
    outcome = await service.receive_callback(services, deployment_id, body)
    return {
        "deployment_id": outcome.deployment.id,
        "status": outcome.deployment.status.value,
        "accepted": outcome.accepted,
    }

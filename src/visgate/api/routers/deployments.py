"""`/v1/deployments`: create (202 at once), read, list, delete. The reconciler does the rest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.idempotency import IdempotentCall
from visgate.api.schemas import ERROR_RESPONSES, DeploymentAccepted, DeploymentList, DeploymentView
from visgate.deployments import service
from visgate.deployments.schemas import CreateDeployment
from visgate.deployments.service import SECRET_FIELDS
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status
from visgate.kit import iso
from visgate.registry.models import estimated_ready_seconds
from visgate.store.idempotency import fingerprint

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)


def _accepted(dep: Deployment) -> dict[str, object]:
    """The 202 body; FastAPI checks it against `DeploymentAccepted` once, on the way out."""
    return {
        "deployment_id": dep.id,
        "status": dep.status.value,
        "model_id": dep.model_id,
        "estimated_ready_seconds": estimated_ready_seconds(dep.model_id),
        "webhook_url": dep.user_webhook_url,
        "created_at": iso(dep.created_at) or "",
    }


@router.post(
    "",
    status_code=202,
    response_model=DeploymentAccepted,
    responses={409: ERROR_RESPONSES[422] | {"description": "Idempotency key in flight"}},
)
async def create_deployment(
    body: CreateDeployment,
    key: CurrentKey,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=255, min_length=1)
    ] = None,
) -> dict[str, object]:
    """Record the deployment and answer at once; progress comes by GET, SSE or webhook."""
    if idempotency_key is None:
        return _accepted(await service.create(services, body, key))
    call = IdempotentCall(
        services.store.idempotency,
        key.tenant,
        idempotency_key,
        _fingerprint(body),
        render=_accepted,
    )
    replay = await call.begin()
    if replay is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        async with call.held():
            dep = await service.create(
                services, body, key, deployment_id=call.deployment_id, guard=call.guard
            )
    except BaseException:
        await call.abandon()
        raise
    answer = _accepted(dep)
    await call.complete(202, answer)  # never raises: the deployment exists, it is the answer
    return answer


def _fingerprint(body: CreateDeployment) -> str:
    """Same key + same body replays; secrets count as body but only through a hash."""
    plain = body.model_dump(mode="json", exclude=set(SECRET_FIELDS))
    for field in SECRET_FIELDS:
        value = getattr(body, field)
        plain[field] = fingerprint({"v": value.get_secret_value()}) if value else None
    return fingerprint(plain)


@router.get("", response_model=DeploymentList)
async def list_deployments(
    key: CurrentKey,
    services: ServicesDep,
    status: Annotated[Status | None, Query(description="Only deployments in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, object]:
    """The caller's deployments, newest first; pass `next_cursor` back as `cursor`."""
    page = await services.store.deployments.list(
        tenant=key.tenant, status=status, limit=limit, cursor=cursor
    )
    return {"items": [d.public() for d in page.items], "next_cursor": page.next_cursor}


@router.get("/{deployment_id}", response_model=DeploymentView)
async def get_deployment(
    deployment_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, object]:
    require_deployment_id(deployment_id)
    return (await services.store.deployments.get(deployment_id, tenant=key.tenant)).public()


@router.delete("/{deployment_id}", status_code=204, response_class=Response)
async def delete_deployment(deployment_id: str, key: CurrentKey, services: ServicesDep) -> Response:
    """Start teardown; repeatable. The record reads `deleting`, then `deleted`."""
    require_deployment_id(deployment_id)
    await service.request_delete(services, deployment_id, key.tenant)
    return Response(status_code=204)

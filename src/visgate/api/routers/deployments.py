"""`/v1/deployments`: create (202 at once), read, list, delete. The reconciler does the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.idempotency import IdempotentCall
from visgate.api.schemas import (
    ERROR_RESPONSES,
    CreateDeployment,
    DeploymentAccepted,
    DeploymentList,
    DeploymentView,
)
from visgate.auth.api_keys import tenant_limits
from visgate.domain.deployment import Deployment, new_deployment_id
from visgate.domain.errors import ValidationError, VisgateError
from visgate.domain.records import ApiKey
from visgate.domain.status import Status
from visgate.kit import iso
from visgate.logging import get_logger
from visgate.services import Services
from visgate.store.idempotency import fingerprint
from visgate.store.quotas import Limits

log = get_logger(__name__)
router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)

SECRET_FIELDS = {"user_runpod_key": "runpod_api_key", "hf_token": "hf_token"}


@dataclass(frozen=True, slots=True)
class _Checked:
    tier: str | None
    data_center_ids: list[str]
    limits: Limits


async def _check_request(body: CreateDeployment, key: ApiKey, services: Services) -> _Checked:
    """Validate what pydantic cannot: the GPU tier, the region, `max_workers` against the
    tenant's cap, and the webhook target's address."""
    from visgate.registry.gpus import resolve_tier
    from visgate.registry.regions import data_centers_for
    from visgate.webhooks.urls import check_webhook_url

    tier = resolve_tier(body.gpu_tier) if body.gpu_tier else None
    data_center_ids = data_centers_for(body.region) if body.region else []
    limits = tenant_limits(services, key)
    if body.max_workers > limits.max_workers:
        raise ValidationError(
            f"max_workers {body.max_workers} is over this tenant's limit of"
            f" {limits.max_workers} workers",
            [{"field": "max_workers", "message": f"at most {limits.max_workers}"}],
        )
    if body.user_webhook_url:
        await check_webhook_url(
            body.user_webhook_url, allow_private=services.settings.webhook_allow_private_urls
        )
    return _Checked(tier, data_center_ids, limits)


async def _create(body: CreateDeployment, key: CurrentKey, services: Services) -> Deployment:
    """Take a quota slot, store the secrets, write the record; a failure at any point undoes
    what was done, so a refused POST leaves no record, no secret and no slot."""
    checked = await _check_request(body, key, services)
    now = time.time()
    deployment_id = new_deployment_id()
    quotas = services.store.quotas
    await quotas.reserve(key.tenant, deployment_id, body.max_workers, checked.limits)
    refs: dict[str, str] = {}
    try:
        for field, name in SECRET_FIELDS.items():
            value = getattr(body, field)
            if value is not None:
                refs[name] = await services.secrets.put(
                    deployment_id, name, value.get_secret_value()
                )
        dep = Deployment.new(
            id=deployment_id,
            tenant=key.tenant,
            key_id=key.id,
            model_id=body.hf_model_id,
            now=now,
            gpu_tier=checked.tier,
            user_webhook_url=body.user_webhook_url,
            secret_refs=refs,
            max_workers=body.max_workers,
            region=body.region.upper() if body.region else None,
            data_center_ids=checked.data_center_ids,
            ttl_seconds=body.ttl_seconds,
        )
        dep = await services.store.deployments.create(dep)
    except BaseException:
        if refs:
            await services.secrets.delete_for(deployment_id)
        try:
            await quotas.release(key.tenant, deployment_id)
        except VisgateError as exc:  # the slot has no record: a later recount drops it
            log.warning("quota_release_failed", error_type=exc.type, error=exc.message)
        raise
    services.poke()
    log.info("deployment_created", deployment_id=dep.id, model_id=dep.model_id)
    return dep


def _estimated_ready_seconds(model_id: str) -> int:
    from visgate.registry.models import estimated_ready_seconds

    return estimated_ready_seconds(model_id)


def _accepted(dep: Deployment) -> dict[str, object]:
    return DeploymentAccepted(
        deployment_id=dep.id,
        status=dep.status.value,
        model_id=dep.model_id,
        estimated_ready_seconds=_estimated_ready_seconds(dep.model_id),
        webhook_url=dep.user_webhook_url,
        created_at=iso(dep.created_at) or "",
    ).model_dump()


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
        return _accepted(await _create(body, key, services))
    call = IdempotentCall(
        services.store.idempotency, key.tenant, idempotency_key, _fingerprint(body)
    )
    replay = await call.begin()
    if replay is not None:
        response.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        answer = _accepted(await _create(body, key, services))
    except BaseException:
        await call.abandon()
        raise
    await call.complete(202, answer)
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
async def delete_deployment(
    deployment_id: str, key: CurrentKey, services: ServicesDep, request: Request
) -> Response:
    """Start teardown; repeatable. The record reads `deleting`, then `deleted`."""
    require_deployment_id(deployment_id)
    now = time.time()

    dep = await services.store.deployments.mutate(
        deployment_id, lambda d: d.request_delete(now), tenant=key.tenant
    )
    services.poke()
    log.info("deployment_delete_requested", status=dep.status.value)
    return Response(status_code=204)

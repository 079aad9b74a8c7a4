"""Inference job proxy: the user calls us, we call the endpoint with the stored Runpod key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id, require_job_id
from visgate.api.schemas import ERROR_RESPONSES, JobRequest
from visgate.deployments.service import provider_key
from visgate.domain.errors import DeploymentNotReadyError, ProviderNotConfiguredError
from visgate.domain.status import SERVING
from visgate.providers.base import GpuProvider
from visgate.services import Services

router = APIRouter(
    prefix="/v1/deployments/{deployment_id}/jobs",
    tags=["jobs"],
    responses={
        **ERROR_RESPONSES,
        409: ERROR_RESPONSES[422] | {"description": "Not ready"},
        503: ERROR_RESPONSES[422] | {"description": "No GPU provider on this control plane"},
    },
)


@dataclass(frozen=True, slots=True)
class _Target:
    """A serving endpoint and what it takes to call it."""

    endpoint_id: str
    api_key: str
    provider: GpuProvider


async def _ready(deployment_id: str, key: CurrentKey, services: Services) -> _Target:
    require_deployment_id(deployment_id)
    dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    if dep.status not in SERVING or not dep.endpoint_id:
        raise DeploymentNotReadyError(
            f"deployment {dep.id} is {dep.status.value}; jobs are accepted once it is ready"
        )
    if services.provider is None:
        raise ProviderNotConfiguredError("this control plane has no GPU provider to run jobs on")
    return _Target(dep.endpoint_id, await provider_key(services, dep), services.provider)


@router.post("", status_code=200)
async def submit_job(
    deployment_id: str, body: JobRequest, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    """Queue a job (Runpod `/run`): answers `{id, status}` at once."""
    target = await _ready(deployment_id, key, services)
    payload = body.model_dump(exclude_none=True)
    return await target.provider.submit_job(target.endpoint_id, payload, api_key=target.api_key)


@router.post("/sync", status_code=200)
async def submit_job_sync(
    deployment_id: str, body: JobRequest, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    """Run a job and wait for it (Runpod `/runsync`)."""
    target = await _ready(deployment_id, key, services)
    payload = body.model_dump(exclude_none=True)
    return await target.provider.submit_job(
        target.endpoint_id, payload, api_key=target.api_key, sync=True
    )


@router.get("/{job_id}")
async def job_status(
    deployment_id: str, job_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    require_job_id(job_id)
    target = await _ready(deployment_id, key, services)
    return await target.provider.job_status(target.endpoint_id, job_id, api_key=target.api_key)


@router.post("/{job_id}/cancel")
async def cancel_job(
    deployment_id: str, job_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    require_job_id(job_id)
    target = await _ready(deployment_id, key, services)
    return await target.provider.cancel_job(target.endpoint_id, job_id, api_key=target.api_key)

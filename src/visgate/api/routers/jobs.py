"""Inference job proxy: the user calls us, we call the endpoint with the stored Runpod key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id, require_job_id
from visgate.api.schemas import ERROR_RESPONSES, JobRequest
from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotReadyError
from visgate.domain.status import SERVING
from visgate.orchestrator.credentials import provider_key
from visgate.services import Services

router = APIRouter(
    prefix="/v1/deployments/{deployment_id}/jobs",
    tags=["jobs"],
    responses={**ERROR_RESPONSES, 409: ERROR_RESPONSES[422] | {"description": "Not ready"}},
)


async def _ready(deployment_id: str, key: CurrentKey, services: Services) -> tuple[Deployment, str]:
    require_deployment_id(deployment_id)
    dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    if dep.status not in SERVING or not dep.endpoint_id:
        raise DeploymentNotReadyError(
            f"deployment {dep.id} is {dep.status.value}; jobs are accepted once it is ready"
        )
    return dep, await provider_key(services, dep)


def _provider(services: Services) -> Any:
    assert services.provider is not None, "no GPU provider configured"
    return services.provider


@router.post("", status_code=200)
async def submit_job(
    deployment_id: str, body: JobRequest, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    """Queue a job (Runpod `/run`): answers `{id, status}` at once."""
    dep, api_key = await _ready(deployment_id, key, services)
    payload = body.model_dump(exclude_none=True)
    return await _provider(services).submit_job(dep.endpoint_id, payload, api_key=api_key)  # type: ignore[no-any-return]


@router.post("/sync", status_code=200)
async def submit_job_sync(
    deployment_id: str, body: JobRequest, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    """Run a job and wait for it (Runpod `/runsync`)."""
    dep, api_key = await _ready(deployment_id, key, services)
    payload = body.model_dump(exclude_none=True)
    return await _provider(services).submit_job(  # type: ignore[no-any-return]
        dep.endpoint_id, payload, api_key=api_key, sync=True
    )


@router.get("/{job_id}")
async def job_status(
    deployment_id: str, job_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    require_job_id(job_id)
    dep, api_key = await _ready(deployment_id, key, services)
    return await _provider(services).job_status(dep.endpoint_id, job_id, api_key=api_key)  # type: ignore[no-any-return]


@router.post("/{job_id}/cancel")
async def cancel_job(
    deployment_id: str, job_id: str, key: CurrentKey, services: ServicesDep
) -> dict[str, Any]:
    require_job_id(job_id)
    dep, api_key = await _ready(deployment_id, key, services)
    return await _provider(services).cancel_job(dep.endpoint_id, job_id, api_key=api_key)  # type: ignore[no-any-return]

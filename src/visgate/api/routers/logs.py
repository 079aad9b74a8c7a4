"""`GET /v1/deployments/{id}/logs`: the control plane's log of a deployment (`source=control`,
the default: the same lines as the deployment view) or its workers' own output
(`source=worker`: read from the provider, bounded, every secret the control plane knows for
the deployment masked)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES
from visgate.deployments.service import provider_key, secret
from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotReadyError
from visgate.providers.worker_logs import MAX_WORKER_LOG_LINES, masked
from visgate.services import Services

router = APIRouter(
    prefix="/v1/deployments/{deployment_id}/logs",
    tags=["deployments"],
    responses={
        **ERROR_RESPONSES,
        409: ERROR_RESPONSES[422]
        | {
            "description": "No endpoint to read worker logs from (`DeploymentNotReadyError`), "
            "or the Runpod API in use has no worker logs (`WorkerLogsUnavailableError`)"
        },
    },
)


class LogSource(StrEnum):
    control = "control"
    worker = "worker"


async def _known_secrets(services: Services, dep: Deployment, api_key: str) -> list[str]:
    """`api_key` is the deployment's own Runpod key when it has one (already read)."""
    found = [api_key, services.callback_tokens.token(dep.id)]
    for name in dep.secret_refs:
        if name != "runpod_api_key":
            found.append(await secret(services, dep, name) or "")
    settings = services.settings
    for value in (settings.runpod_api_key, settings.internal_webhook_secret):
        found.append(value.get_secret_value() if value is not None else "")
    return found


@router.get("")
async def deployment_logs(
    deployment_id: str,
    key: CurrentKey,
    services: ServicesDep,
    source: LogSource = LogSource.control,
    lines: Annotated[int, Query(ge=1, le=MAX_WORKER_LOG_LINES)] = 100,
) -> dict[str, Any]:
    """The last `lines` log lines, oldest first."""
    require_deployment_id(deployment_id)
    dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    if source is LogSource.control:
        entries = [entry.public() for entry in dep.logs[-lines:]]
        return {"deployment_id": dep.id, "source": source.value, "lines": entries}
    if not dep.endpoint_id or services.provider is None:
        raise DeploymentNotReadyError(
            f"deployment {dep.id} is {dep.status.value} and has no endpoint whose workers "
            "could have logged"
        )
    api_key = await provider_key(services, dep)
    found = await services.provider.worker_logs(dep.endpoint_id, api_key=api_key, lines=lines)
    shown = masked(found, await _known_secrets(services, dep, api_key))
    return {
        "deployment_id": dep.id,
        "source": source.value,
        "lines": [
            {"ts": e.ts, "worker_id": e.worker_id, "source": e.source, "line": e.line}
            for e in shown
        ],
    }

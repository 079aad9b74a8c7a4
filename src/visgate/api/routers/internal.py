"""`POST /internal/deployment-ready/{id}`: the worker image reports progress, ready or failed.

Authenticated by the per-deployment token the worker got as `VISGATE_CALLBACK_TOKEN`
(an HMAC of the id): a token for one deployment is worthless for another.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import APIRouter, Request

from visgate.api.deps import ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES, WorkerCallback
from visgate.domain.errors import UnauthorizedError
from visgate.domain.status import SERVING
from visgate.orchestrator.callbacks import apply_worker_callback
from visgate.orchestrator.events import queue_pending_events

log = structlog.get_logger(__name__)

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
    now = time.time()
    outcome: dict[str, Any] = {}

    def apply(dep: Any) -> bool:
        outcome["changed"] = apply_worker_callback(dep, body, now)
        return outcome["changed"]

    dep = await services.store.deployments.mutate(deployment_id, apply)
    if outcome.get("changed") and dep.pending_events:
        # Queue the webhook now rather than at the reconciler's next pass: ready → webhook
        # latency is what users feel. The reconciler re-queues idempotently after a crash.
        await queue_pending_events(services, dep)
    elif body.status == "failed" and dep.status in SERVING:
        # One worker failing after ready does not end a serving endpoint; the operator hears.
        log.warning("worker_failed_while_serving", deployment_id=dep.id, error=body.error)
    services.poke()
    return {
        "deployment_id": dep.id,
        "status": dep.status.value,
        "accepted": bool(outcome.get("changed")),
    }

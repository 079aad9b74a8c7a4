"""What a worker callback does to a deployment record: pure, so it is applied under the
store's optimistic retries and tested without HTTP."""

from __future__ import annotations

from visgate.deployments.schemas import WorkerCallback
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.status import Status

_PROGRESS_ORDER = [Status.creating_endpoint, Status.downloading_model, Status.loading_model]
_LIVE = {Status.creating_endpoint, Status.downloading_model, Status.loading_model}


def apply_worker_callback(dep: Deployment, body: WorkerCallback, now: float) -> bool:
    """Apply one callback; False when it changes nothing (a repeat, or a deployment that
    is already past the point it speaks of, e.g. deleted or ready).

    A worker that fails after the deployment became ready (a new worker on a bad host, a
    reload that ran out of memory) is one worker, not the endpoint: the others keep serving,
    so the record is left as it is and the service logs the report for the operator."""
    reported = Status(body.status)
    if dep.status not in _LIVE:
        return False
    if reported in (Status.downloading_model, Status.loading_model):
        suffix = f": {body.message}" if body.message else ""
        if _PROGRESS_ORDER.index(reported) > _PROGRESS_ORDER.index(dep.status):
            dep.move_to(reported, now, f"worker: {reported.value}{suffix}")
        else:
            dep.log(now, f"worker: {reported.value}{suffix}")
        return True
    if reported is Status.failed:
        dep.fail(now, ErrorInfo(type="WorkerFailedError", message=body.error or "worker failed"))
        return True
    # ready
    if dep.status is Status.creating_endpoint:
        dep.move_to(Status.loading_model, now, "worker reported before the endpoint was recorded")
    dep.worker = {
        "models_loaded": list(body.models_loaded),
        "vram_allocated_gb": body.vram_allocated_gb,
        "gpu": body.gpu,
    }
    if body.gpu:
        dep.gpu = body.gpu
    loaded = ", ".join(body.models_loaded) or "models"
    dep.move_to(Status.ready, now, f"worker ready: {loaded} loaded")
    dep.pending_events.append("deployment.ready")
    dep.due_now()  # the reconciler confirms endpoint fields and queues the webhook
    return True

"""What a worker callback does to a deployment record: pure, so it is applied under the
store's optimistic retries and tested without HTTP."""

from __future__ import annotations

from typing import Protocol

from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.status import SERVING, Status

_PROGRESS_ORDER = [Status.creating_endpoint, Status.downloading_model, Status.loading_model]
_LIVE = {Status.creating_endpoint, Status.downloading_model, Status.loading_model}


class CallbackBody(Protocol):
    status: str
    models_loaded: list[str]
    vram_allocated_gb: float | None
    gpu: str | None
    error: str | None
    message: str | None


def apply_worker_callback(dep: Deployment, body: CallbackBody, now: float) -> bool:
    """Apply one callback; False when it changes nothing (a repeat, or a deployment that
    is already past the point it speaks of, e.g. deleted)."""
    reported = Status(body.status)
    if reported is Status.failed and dep.status in SERVING:
        return _note_failure_while_serving(dep, body, now)
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
    dep.due_at = now  # the reconciler confirms endpoint fields and queues the webhook
    return True


def _note_failure_while_serving(dep: Deployment, body: CallbackBody, now: float) -> bool:
    """A worker that fails after the deployment became ready (a new worker on a bad host, a
    reload that ran out of memory) is one worker, not the endpoint: the others keep serving,
    so the record only says so, once per distinct error, and nothing is torn down."""
    message = f"a worker reported a failure; the endpoint stays up: {body.error or 'no detail'}"
    if dep.logs and dep.logs[-1].message == message:
        return False
    dep.log(now, message, level="warning")
    return True

"""One idempotent step per status. A step does the slow calls (hub, provider) outside any
transaction and returns a `StepResult` (results.py): plain data the loop writes to the
freshest record under the lease. Its decision applies only if the record is still in the
status the step ran for; its `facts` (things now true in the world, like an endpoint id)
are recorded always.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from visgate.cost.pricing import billed_workers
from visgate.deployments.service import provider_key, secret
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    LeaseLostError,
    RunpodTemplateNotConfiguredError,
    RunpodUnavailableError,
    VisgateError,
)
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.fencing import fence_for, hold, undo_after_lost_lease
from visgate.orchestrator.metering import serving
from visgate.orchestrator.results import (
    Checkpoint,
    Facts,
    Fail,
    LogLine,
    Move,
    Step,
    StepResult,
    provider_of,
    wait,
)
from visgate.orchestrator.teardown import clean_up_failed, delete, final_sweep
from visgate.providers.base import (
    EndpointRef,
    EndpointSpec,
    GpuType,
    endpoint_name,
)
from visgate.registry.gpus import selection, widen_pools
from visgate.registry.models import worker_env
from visgate.services import Services

log = get_logger(__name__)

STALL_CHECKS_BEFORE_WIDENING = 3


# --- validating --------------------------------------------------------------------------


async def validate(services: Services, dep: Deployment) -> StepResult:
    token = await secret(services, dep, "hf_token")
    check = await services.hub.check(dep.model_id, token)
    return StepResult(
        fields={"vram_gb": check.vram_gb},
        transition=Move(
            Status.selecting_gpu,
            f"model found on the hub; needs about {check.vram_gb:.1f} GB of GPU memory"
            f" ({check.source})",
        ),
    )


# --- selecting_gpu -----------------------------------------------------------------------


GPU_TYPES_TIMEOUT_S = 10.0


async def refresh_gpu_catalogue(services: Services, dep: Deployment) -> None:
    """Overlay the provider's live GPU sizes and stock on the catalogue (at most once per
    its TTL, shared by every deployment).

    Uses the deployment's key (else the operator's). Never fails the step: without a key,
    or when the fetch fails, selection uses the table it has.
    """
    catalogue = services.catalogue
    if services.provider is None or not catalogue.due():
        return
    try:
        key = await provider_key(services, dep)
    except VisgateError:
        return
    provider = services.provider

    async def fetch() -> list[GpuType]:
        return await asyncio.wait_for(provider.gpu_types(api_key=key), GPU_TYPES_TIMEOUT_S)

    await catalogue.refresh(fetch)


async def select_gpu(services: Services, dep: Deployment) -> StepResult:
    """Pick the endpoint's pools; the log says when live stock put a cheaper pool last."""
    assert dep.vram_gb is not None
    await refresh_gpu_catalogue(services, dep)
    chosen = selection(dep.vram_gb, dep.gpu_tier, catalogue=services.catalogue)
    return StepResult(
        fields={"gpu_pools": chosen.pools},
        logs=(LogLine(chosen.note),) if chosen.note else (),
        transition=Move(
            Status.creating_endpoint, f"GPU pools, in order: {', '.join(chosen.pools)}"
        ),
    )


# --- creating_endpoint -------------------------------------------------------------------


async def endpoint_spec(services: Services, dep: Deployment, pools: list[str]) -> EndpointSpec:
    settings = services.settings
    image = settings.runpod_template_image or provider_of(services).default_image
    if not image:
        raise RunpodTemplateNotConfiguredError(
            "RUNPOD_TEMPLATE_IMAGE is not set: the operator must configure the worker image"
        )
    env = {
        "HF_MODEL_ID": dep.model_id,
        "VISGATE_WEBHOOK": services.callback_url(dep.id),
        "VISGATE_CALLBACK_TOKEN": services.callback_tokens.token(dep.id),
        **worker_env(dep.model_id),
    }
    hf_token = await secret(services, dep, "hf_token")
    if hf_token:
        env["HF_TOKEN"] = hf_token
    return EndpointSpec(
        name=endpoint_name(dep.id),
        image=image,
        env=env,
        gpu_pools=pools,
        workers_max=dep.max_workers,
        data_center_ids=tuple(dep.data_center_ids),
        registry_auth_id=settings.runpod_registry_auth_id,
    )


WARMUP_JOB: dict[str, Any] = {"input": {"warmup": True}}


async def warm_up(services: Services, endpoint_id: str, key: str) -> str:
    """Queue the one warm-up job that makes Runpod start a worker.

    With `workersMin=0` a flex worker's container runs only while a job waits, and it is
    the worker's start-up (model load, then the ready callback) that the deployment waits
    for. The worker answers `{"warmup": "ok"}` once its models are loaded. Returns the
    job's id, recorded as a fact.
    """
    answer = await provider_of(services).submit_job(endpoint_id, WARMUP_JOB, api_key=key)
    return str(answer.get("id") or "unknown")


async def create_endpoint(services: Services, dep: Deployment) -> StepResult:
    """Before the first create call the record notes that the create began (a checkpoint,
    written under the lease): a try after a crash or a lost answer then looks up by name
    first, while the first try, which follows the checkpoint, may skip the look-ups."""
    if not dep.create_started:
        return StepResult(
            checkpoint=Checkpoint(fields={"create_started": True}, then=create_fresh_endpoint)
        )
    return await _create_endpoint(services, dep, fresh=False)


async def create_fresh_endpoint(services: Services, dep: Deployment) -> StepResult:
    """The create step right after its checkpoint: nothing can have been created before."""
    return await _create_endpoint(services, dep, fresh=True)


async def _create_endpoint(services: Services, dep: Deployment, *, fresh: bool) -> StepResult:
    """Fenced: each create call and the warm-up job follow a proof of the lease. A step
    that finds its lease lost after making something undoes it (fencing.py)."""
    spec = await endpoint_spec(services, dep, dep.gpu_pools)
    key = await provider_key(services, dep)
    fence = fence_for(services, dep)
    ref: EndpointRef | None = None

    async def undo() -> None:
        await undo_after_lost_lease(services, dep.id, spec.name, key, ref)

    try:
        ref = await provider_of(services).ensure_endpoint(
            spec, api_key=key, fresh=fresh, fence=fence
        )
        await fence()  # the warm-up job starts a GPU worker
    except LeaseLostError:
        await undo()
        raise
    job_id = None
    try:
        job_id = await warm_up(services, ref.endpoint_id, key)
    except VisgateError as exc:  # the endpoint exists: keep that fact, warm up later
        log.warning("warmup_submit_failed", error_type=exc.type, error=exc.message)
    settings = services.settings
    return StepResult(
        facts=Facts(endpoint=ref, warmup_job_id=job_id),
        fields={"deadline_at": time.time() + settings.ready_timeout_seconds},
        transition=Move(Status.loading_model, "waiting for the worker to load the model"),
        due_in=settings.health_poll_seconds,
        undo=undo,
    )


# --- downloading_model / loading_model ---------------------------------------------------

_WAITING = (Status.creating_endpoint, Status.downloading_model, Status.loading_model)


def ready_deadline(dep: Deployment, timeout_s: float) -> float:
    """When the worker must have reported ready.

    `deadline_at` is written by the create step, which a worker callback can beat (the
    record then moved on and the step's write was skipped); the clock then starts when the
    record first entered a waiting status.
    """
    if dep.deadline_at is not None:
        return dep.deadline_at
    entered = [e.at for e in dep.history if e.status in _WAITING]
    return (min(entered) if entered else dep.status_since) + timeout_s


async def await_ready(services: Services, dep: Deployment) -> StepResult:
    poll = float(services.settings.health_poll_seconds)
    timeout = services.settings.ready_timeout_seconds
    if time.time() > ready_deadline(dep, timeout):
        message = f"the worker did not report ready within {timeout} s"
        return StepResult(transition=Fail(ErrorInfo(type="ReadyTimeoutError", message=message)))
    key = await provider_key(services, dep)
    provider = provider_of(services)
    if not dep.endpoint_id:
        # The callback raced the creating step's write: find the endpoint by name.
        found = await provider.find_endpoint(endpoint_name(dep.id), api_key=key)
        return wait(poll, facts=Facts(endpoint=found))
    if dep.warmup_job_id is None:
        await hold(services, dep)
        job_id = await warm_up(services, dep.endpoint_id, key)
        return wait(poll, facts=Facts(warmup_job_id=job_id))
    health = await provider.endpoint_health(dep.endpoint_id, api_key=key)
    metered = Facts(billed_workers=billed_workers(health.workers))
    if not health.workers.stalled:
        return wait(poll, facts=metered, stall_checks=0)
    if dep.stall_checks + 1 < STALL_CHECKS_BEFORE_WIDENING:
        pools = ", ".join(dep.gpu_pools)
        first = (LogLine(f"workers throttled on {pools}: no free GPU yet"),)
        return StepResult(
            due_in=poll,
            facts=metered,
            fields={"stall_checks": dep.stall_checks + 1},
            logs=first if dep.stall_checks == 0 else (),
        )
    assert dep.vram_gb is not None
    wider = widen_pools(dep.gpu_pools, dep.vram_gb, dep.gpu_tier, catalogue=services.catalogue)
    if not wider:
        exhausted = LogLine("no capacity on any pool that fits; still waiting", level="warning")
        return StepResult(due_in=poll, facts=metered, fields={"stall_checks": 0}, logs=(exhausted,))
    spec = await endpoint_spec(services, dep, wider)
    await hold(services, dep)
    ref = await provider.set_gpu_pools(
        EndpointRef(
            endpoint_id=dep.endpoint_id,
            template_id=dep.template_id or "",
            name=endpoint_name(dep.id),
            url=dep.endpoint_url or "",
            gpu_pools=dep.gpu_pools,
        ),
        spec,
        api_key=key,
    )
    pools = list(ref.gpu_pools or wider)
    widened = (
        f"no capacity on {', '.join(dep.gpu_pools)}; widened the endpoint to {', '.join(pools)}"
    )
    return StepResult(
        due_in=poll,
        facts=metered,
        fields={"gpu_pools": pools, "stall_checks": 0},
        logs=(LogLine(widened),),
    )


# --- ready, failed, deleting -------------------------------------------------------------


async def settle_ready(services: Services, dep: Deployment) -> StepResult:
    """A ready deployment serves: this step never fails it and never touches its endpoint.
    It records the endpoint's id when the worker's `ready` was written before the create
    step's result (which then found the record moved on, or was lost with its process);
    until Runpod lists the endpoint the step retries with backoff, and `ready` cannot fail,
    so the retries never end it. With the id known it is the periodic meter sample
    (`serving`)."""
    if dep.endpoint_id:
        return await serving(services, dep)
    name = endpoint_name(dep.id)
    found = await provider_of(services).find_endpoint(
        name, api_key=await provider_key(services, dep)
    )
    if found is None:
        raise RunpodUnavailableError(f"endpoint {name} is not listed by the provider yet")
    return wait(0.0, facts=Facts(endpoint=found))


STEPS: dict[Status, Step] = {  # the step each status runs
    Status.validating: validate,
    Status.selecting_gpu: select_gpu,
    Status.creating_endpoint: create_endpoint,
    Status.downloading_model: await_ready,
    Status.loading_model: await_ready,
    Status.ready: settle_ready,
    Status.failed: clean_up_failed,
    Status.deleting: delete,
    Status.webhook_failed: serving,
    Status.deleted: final_sweep,
}

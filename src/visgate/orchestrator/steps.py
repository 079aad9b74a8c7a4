"""One idempotent step per status. A step does the slow calls (hub, provider) outside any
transaction and returns a `StepResult`: what to write, applied by the loop to the freshest
record under the lease. `advance` runs only if the record is still in the status the step
ran for; `facts` (things now true in the world, like an endpoint id) are recorded always.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from visgate.deployments.service import provider_key, secret
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    LeaseLostError,
    RunpodTemplateNotConfiguredError,
    RunpodUnavailableError,
    StaleWriteError,
    TransientError,
    VisgateError,
)
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.metering import sampled, serving, start_meter
from visgate.orchestrator.results import Change, Step, StepResult, nothing, provider_of
from visgate.orchestrator.teardown import clean_up_failed, delete
from visgate.providers.base import (
    EndpointRef,
    EndpointSpec,
    GpuType,
    endpoint_name,
)
from visgate.services import Services

log = get_logger(__name__)

STALL_CHECKS_BEFORE_WIDENING = 3


# --- validating --------------------------------------------------------------------------


async def validate(services: Services, dep: Deployment) -> StepResult:
    token = await secret(services, dep, "hf_token")
    check = await services.hub.check(dep.model_id, token)

    def advance(d: Deployment, now: float) -> None:
        d.vram_gb = check.vram_gb
        d.move_to(
            Status.selecting_gpu,
            now,
            f"model found on the hub; needs about {check.vram_gb:.1f} GB of GPU memory"
            f" ({check.source})",
        )
        d.due_at = now

    return StepResult(advance=advance)


# --- selecting_gpu -----------------------------------------------------------------------


GPU_TYPES_TIMEOUT_S = 10.0


async def refresh_gpu_catalogue(services: Services, dep: Deployment) -> None:
    """Overlay the provider's live GPU sizes and stock on the catalogue (at most once per
    its TTL, shared by every deployment).

    Uses the deployment's key (else the operator's). Never fails the step: without a key,
    or when the fetch fails, selection uses the table it has.
    """
    from visgate.registry.catalogue import default_catalogue

    if services.provider is None or not default_catalogue.due():
        return
    try:
        key = await provider_key(services, dep)
    except VisgateError:
        return
    provider = services.provider

    async def fetch() -> list[GpuType]:
        return await asyncio.wait_for(provider.gpu_types(api_key=key), GPU_TYPES_TIMEOUT_S)

    await default_catalogue.refresh(fetch)


async def select_gpu(services: Services, dep: Deployment) -> StepResult:
    """Pick the endpoint's pools; the log says when live stock put a cheaper pool last."""
    from visgate.registry.gpus import selection

    assert dep.vram_gb is not None
    await refresh_gpu_catalogue(services, dep)
    chosen = selection(dep.vram_gb, dep.gpu_tier)
    pools = chosen.pools

    def advance(d: Deployment, now: float) -> None:
        d.gpu_pools = pools
        if chosen.note:
            d.log(now, chosen.note)
        d.move_to(Status.creating_endpoint, now, f"GPU pools, in order: {', '.join(pools)}")
        d.due_at = now

    return StepResult(advance=advance)


# --- creating_endpoint -------------------------------------------------------------------


async def endpoint_spec(services: Services, dep: Deployment, pools: list[str]) -> EndpointSpec:
    from visgate.registry.models import worker_env

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


def _record_endpoint(ref: EndpointRef) -> Change:
    def facts(d: Deployment, now: float) -> None:
        if d.endpoint_id != ref.endpoint_id:
            d.endpoint_id, d.template_id, d.endpoint_url = (
                ref.endpoint_id,
                ref.template_id,
                ref.url,
            )
            d.log(now, f"endpoint {ref.endpoint_id} ({ref.name}) on {', '.join(ref.gpu_pools)}")
        d.needs_teardown = True
        start_meter(d, now)

    return facts


WARMUP_JOB: dict[str, Any] = {"input": {"warmup": True}}


async def warm_up(services: Services, endpoint_id: str, key: str) -> Change:
    """Queue the one warm-up job that makes Runpod start a worker.

    With `workersMin=0` a flex worker's container runs only while a job waits, and it is
    the worker's start-up (model load, then the ready callback) that the deployment waits
    for. The worker answers `{"warmup": "ok"}` once its models are loaded.
    """
    answer = await provider_of(services).submit_job(endpoint_id, WARMUP_JOB, api_key=key)
    job_id = str(answer.get("id") or "unknown")

    def facts(d: Deployment, now: float) -> None:
        if d.warmup_job_id is None:
            d.warmup_job_id = job_id
            d.log(now, f"warm-up job {job_id} queued so that a worker starts")

    return facts


def _both(first: Change, second: Change) -> Change:
    def change(d: Deployment, now: float) -> None:
        first(d, now)
        second(d, now)

    return change


async def _note_create_started(services: Services, dep: Deployment) -> None:
    """Recorded (under the lease) before the first create call: a try after a crash or a
    lost answer then looks up by name first, while the first try may skip the look-ups."""
    dep.create_started = True
    try:
        await services.store.deployments.save(dep, lease_token=dep.lease_token)
    except (StaleWriteError, LeaseLostError) as exc:  # a callback or DELETE wrote first
        raise TransientError(f"the record changed as the create began ({exc.message})") from exc


async def create_endpoint(services: Services, dep: Deployment) -> StepResult:
    spec = await endpoint_spec(services, dep, dep.gpu_pools)
    key = await provider_key(services, dep)
    fresh = not dep.create_started
    if fresh:
        await _note_create_started(services, dep)
    ref = await provider_of(services).ensure_endpoint(spec, api_key=key, fresh=fresh)
    record = _record_endpoint(ref)
    try:
        record = _both(record, await warm_up(services, ref.endpoint_id, key))
    except VisgateError as exc:  # the endpoint exists: keep that fact, warm up on the next pass
        log.warning("warmup_submit_failed", error_type=exc.type, error=exc.message)

    def advance(d: Deployment, now: float) -> None:
        d.move_to(Status.loading_model, now, "waiting for the worker to load the model")
        d.deadline_at = now + services.settings.ready_timeout_seconds
        d.due_at = now + services.settings.health_poll_seconds

    return StepResult(advance=advance, facts=record)


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
    from visgate.registry.gpus import widen_pools

    poll = float(services.settings.health_poll_seconds)
    now = time.time()
    if now > ready_deadline(dep, services.settings.ready_timeout_seconds):
        timeout = services.settings.ready_timeout_seconds

        def timed_out(d: Deployment, at: float) -> None:
            d.fail(
                at,
                ErrorInfo(
                    type="ReadyTimeoutError",
                    message=f"the worker did not report ready within {timeout} s",
                ),
            )

        return StepResult(advance=timed_out)
    if not dep.endpoint_id:
        # The callback raced the creating step's write: find the endpoint by name.
        found = await provider_of(services).find_endpoint(
            endpoint_name(dep.id), api_key=await provider_key(services, dep)
        )
        record = _record_endpoint(found) if found else nothing
        return StepResult(facts=record, advance=lambda d, at: setattr(d, "due_at", at + poll))

    key = await provider_key(services, dep)
    provider = provider_of(services)
    if dep.warmup_job_id is None:
        queued = await warm_up(services, dep.endpoint_id, key)
        return StepResult(facts=queued, advance=lambda d, at: setattr(d, "due_at", at + poll))
    health = await provider.endpoint_health(dep.endpoint_id, api_key=key)
    metered = sampled(health.workers)
    if not health.workers.stalled:

        def waiting(d: Deployment, at: float) -> None:
            d.stall_checks = 0
            d.due_at = at + poll

        return StepResult(advance=waiting, facts=metered)

    if dep.stall_checks + 1 < STALL_CHECKS_BEFORE_WIDENING:

        def stalled(d: Deployment, at: float) -> None:
            d.stall_checks += 1
            if d.stall_checks == 1:
                d.log(at, f"workers throttled on {', '.join(d.gpu_pools)}: no free GPU yet")
            d.due_at = at + poll

        return StepResult(advance=stalled, facts=metered)

    assert dep.vram_gb is not None
    wider = widen_pools(dep.gpu_pools, dep.vram_gb, dep.gpu_tier)
    if not wider:

        def exhausted(d: Deployment, at: float) -> None:
            d.stall_checks = 0
            d.log(at, "no capacity on any pool that fits; still waiting", level="warning")
            d.due_at = at + poll

        return StepResult(advance=exhausted, facts=metered)
    spec = await endpoint_spec(services, dep, wider)
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
    old = ", ".join(dep.gpu_pools)

    def widened(d: Deployment, at: float) -> None:
        d.gpu_pools = list(ref.gpu_pools or wider)
        d.stall_checks = 0
        d.log(at, f"no capacity on {old}; widened the endpoint to {', '.join(d.gpu_pools)}")
        d.due_at = at + poll

    return StepResult(advance=widened, facts=metered)


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
    return StepResult(facts=_record_endpoint(found), advance=lambda d, at: setattr(d, "due_at", at))


async def idle(services: Services, dep: Deployment) -> StepResult:
    return StepResult(advance=lambda d, at: setattr(d, "due_at", None))


STEPS: dict[Status, Step] = {
    Status.validating: validate,
    Status.selecting_gpu: select_gpu,
    Status.creating_endpoint: create_endpoint,
    Status.downloading_model: await_ready,
    Status.loading_model: await_ready,
    Status.ready: settle_ready,
    Status.failed: clean_up_failed,
    Status.deleting: delete,
    Status.webhook_failed: serving,
    Status.deleted: idle,
}

"""One idempotent step per status. A step does the slow calls (hub, provider) outside any
transaction and returns a `StepResult`: what to write, applied by the loop to the freshest
record under the lease. `advance` runs only if the record is still in the status the step
ran for; `facts` (things now true in the world, like an endpoint id) are recorded always.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import (
    RunpodAPIError,
    RunpodTemplateNotConfiguredError,
)
from visgate.domain.status import Status
from visgate.logging import get_logger
from visgate.orchestrator.credentials import provider_key, secret
from visgate.providers.base import EndpointRef, EndpointSpec, GpuProvider, endpoint_name
from visgate.services import Services

log = get_logger(__name__)

Change = Callable[[Deployment, float], None]

STALL_CHECKS_BEFORE_WIDENING = 3


def _nothing(dep: Deployment, now: float) -> None:
    return None


@dataclass(frozen=True)
class StepResult:
    advance: Change = _nothing
    facts: Change = _nothing


Step = Callable[[Services, Deployment], Awaitable[StepResult]]


def provider_of(services: Services) -> GpuProvider:
    if services.provider is None:
        raise RunpodAPIError("no GPU provider is configured on this control plane")
    return services.provider


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


async def select_gpu(services: Services, dep: Deployment) -> StepResult:
    from visgate.registry.gpus import select_pools

    assert dep.vram_gb is not None
    pools = select_pools(dep.vram_gb, dep.gpu_tier)

    def advance(d: Deployment, now: float) -> None:
        d.gpu_pools = pools
        d.move_to(Status.creating_endpoint, now, f"GPU pools, in order: {', '.join(pools)}")
        d.due_at = now

    return StepResult(advance=advance)


# --- creating_endpoint -------------------------------------------------------------------


async def endpoint_spec(services: Services, dep: Deployment, pools: list[str]) -> EndpointSpec:
    from visgate.registry.models import worker_env

    settings = services.settings
    # The local provider runs `inference/` from this checkout: it has no image to pull.
    image = settings.runpod_template_image or ("inference/" if settings.provider == "local" else "")
    if not image:
        raise RunpodTemplateNotConfiguredError(
            "RUNPOD_TEMPLATE_IMAGE is not set: the operator must configure the worker image"
        )
    env = {
        "HF_MODEL_ID": dep.model_id,
        "VISGATE_WEBHOOK": services.callback_url(dep.id),
        "VISGATE_CALLBACK_TOKEN": services.callback_token(dep.id),
        **worker_env(dep.model_id),
    }
    hf_token = await secret(services, dep, "hf_token")
    if hf_token:
        env["HF_TOKEN"] = hf_token
    return EndpointSpec(name=endpoint_name(dep.id), image=image, env=env, gpu_pools=pools)


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

    return facts


async def create_endpoint(services: Services, dep: Deployment) -> StepResult:
    spec = await endpoint_spec(services, dep, dep.gpu_pools)
    key = await provider_key(services, dep)
    ref = await provider_of(services).ensure_endpoint(spec, api_key=key)
    record = _record_endpoint(ref)

    def advance(d: Deployment, now: float) -> None:
        d.move_to(Status.loading_model, now, "waiting for the worker to load the model")
        d.deadline_at = now + services.settings.ready_timeout_seconds
        d.due_at = now + services.settings.health_poll_seconds

    return StepResult(advance=advance, facts=record)


# --- downloading_model / loading_model ---------------------------------------------------


async def await_ready(services: Services, dep: Deployment) -> StepResult:
    from visgate.registry.gpus import widen_pools

    poll = float(services.settings.health_poll_seconds)
    now = time.time()
    if dep.deadline_at is not None and now > dep.deadline_at:
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
        record = _record_endpoint(found) if found else _nothing
        return StepResult(facts=record, advance=lambda d, at: setattr(d, "due_at", at + poll))

    key = await provider_key(services, dep)
    provider = provider_of(services)
    health = await provider.endpoint_health(dep.endpoint_id, api_key=key)
    if not health.workers.stalled:

        def waiting(d: Deployment, at: float) -> None:
            d.stall_checks = 0
            d.due_at = at + poll

        return StepResult(advance=waiting)

    if dep.stall_checks + 1 < STALL_CHECKS_BEFORE_WIDENING:

        def stalled(d: Deployment, at: float) -> None:
            d.stall_checks += 1
            if d.stall_checks == 1:
                d.log(at, f"workers throttled on {', '.join(d.gpu_pools)}: no free GPU yet")
            d.due_at = at + poll

        return StepResult(advance=stalled)

    assert dep.vram_gb is not None
    wider = widen_pools(dep.gpu_pools, dep.vram_gb, dep.gpu_tier)
    if not wider:

        def exhausted(d: Deployment, at: float) -> None:
            d.stall_checks = 0
            d.log(at, "no capacity on any pool that fits; still waiting", level="warning")
            d.due_at = at + poll

        return StepResult(advance=exhausted)
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

    return StepResult(advance=widened)


# --- ready, failed, deleting -------------------------------------------------------------


async def settle_ready(services: Services, dep: Deployment) -> StepResult:
    if dep.endpoint_id:
        return StepResult(advance=lambda d, at: setattr(d, "due_at", None))
    return await await_ready(services, dep)


async def teardown(services: Services, dep: Deployment) -> None:
    """Remove the endpoint, its template, and the deployment's secrets. Repeatable."""
    if dep.needs_teardown or dep.gpu_pools or dep.endpoint_id:
        key = await provider_key(services, dep)
        await provider_of(services).teardown(endpoint_name(dep.id), api_key=key)
    await services.secrets.delete_for(dep.id)


async def clean_up_failed(services: Services, dep: Deployment) -> StepResult:
    if not dep.needs_teardown:
        return StepResult(advance=lambda d, at: setattr(d, "due_at", None))
    await teardown(services, dep)

    def done(d: Deployment, at: float) -> None:
        d.needs_teardown = False
        d.due_at = None
        d.log(at, "cloud resources removed")

    return StepResult(advance=done)


async def delete(services: Services, dep: Deployment) -> StepResult:
    await teardown(services, dep)

    def done(d: Deployment, at: float) -> None:
        d.needs_teardown = False
        d.move_to(Status.deleted, at, "endpoint, template and secrets removed")
        d.pending_events.append("deployment.deleted")
        d.due_at = None

    return StepResult(advance=done)


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
    Status.webhook_failed: idle,
    Status.deleted: idle,
}

"""The deployments service: what a request or a worker may do to a deployment.

Routers and the reconciler's steps call these functions; they own the rules (quota slots,
secrets, which key a deployment's calls use, what a worker report changes, which webhook
events go out) so that no HTTP handler and no loop repeats them. The reconciler does the
rest of a deployment's life.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from visgate.auth.api_keys import tenant_limits
from visgate.deployments.callback import apply_worker_callback
from visgate.deployments.schemas import CreateDeployment, WorkerCallback
from visgate.domain.deployment import Deployment, new_deployment_id
from visgate.domain.errors import RunpodAuthError, ValidationError, VisgateError
from visgate.domain.records import ApiKey
from visgate.domain.status import SERVING
from visgate.logging import get_logger
from visgate.registry.gpus import resolve_tier
from visgate.registry.regions import data_centers_for
from visgate.services import Services
from visgate.store.base import renewing
from visgate.store.quotas import Guard, Limits
from visgate.webhooks.events import build_delivery
from visgate.webhooks.urls import check_webhook_url

log = get_logger(__name__)

# Request fields that are secrets, and the name each is stored under for the deployment.
SECRET_FIELDS = {"user_runpod_key": "runpod_api_key", "hf_token": "hf_token"}


@dataclass(frozen=True, slots=True)
class _Checked:
    tier: str | None
    data_center_ids: list[str]
    limits: Limits


async def _check_request(body: CreateDeployment, key: ApiKey, services: Services) -> _Checked:
    """Validate what pydantic cannot: the GPU tier, the region, `max_workers` against the
    tenant's cap, and the webhook target's address."""
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
            body.user_webhook_url,
            allow_private=services.settings.webhook_allow_private_urls,
            tenant=key.tenant,
        )
    return _Checked(tier, data_center_ids, limits)


async def create(
    services: Services,
    body: CreateDeployment,
    key: ApiKey,
    *,
    deployment_id: str | None = None,
    guard: Guard | None = None,
) -> Deployment:
    """Take a quota slot, store the secrets, write the record; a failure at any point undoes
    what was done, so a refused request leaves no record, no secret and no slot.

    The slot stays this call's for as long as it runs (its lease is renewed), and the record
    is written only while the slot is held and `guard` passes (the Idempotency-Key still
    this request's), in one transaction. When a step fails, whether the record exists is
    read back, not guessed: written after all (a commit whose answer was lost) is success;
    not written is undone; unknown (the store is away) leaves the slot to its lease and the
    recount and the secrets where they are, so nothing a record may point at is removed."""
    checked = await _check_request(body, key, services)
    now = time.time()
    deployment_id = deployment_id or new_deployment_id()
    holder = secrets.token_hex(16)
    quotas = services.store.quotas
    await quotas.reserve(key.tenant, deployment_id, body.max_workers, checked.limits, holder=holder)
    keep = renewing(lambda: quotas.renew(deployment_id, holder), every=quotas.slot_lease_s / 3)
    async with keep:
        try:
            dep = Deployment.new(
                id=deployment_id,
                tenant=key.tenant,
                key_id=key.id,
                model_id=body.hf_model_id,
                now=now,
                gpu_tier=checked.tier,
                user_webhook_url=body.user_webhook_url,
                secret_refs=await _store_secrets(services, deployment_id, body),
                max_workers=body.max_workers,
                region=body.region.upper() if body.region else None,
                data_center_ids=checked.data_center_ids,
                ttl_seconds=body.ttl_seconds,
            )
            dep = await quotas.bind(dep, holder, guard=guard)
        except BaseException as exc:
            made = await _undo(services, body, key.tenant, deployment_id, holder)
            if made is None or not isinstance(exc, Exception):
                raise  # a cancellation goes on even when the record was written
            dep = made
    services.poke()
    log.info("deployment_created", deployment_id=dep.id, model_id=dep.model_id)
    return dep


async def _store_secrets(
    services: Services, deployment_id: str, body: CreateDeployment
) -> dict[str, str]:
    refs: dict[str, str] = {}
    for field, name in SECRET_FIELDS.items():
        value = getattr(body, field)
        if value is not None:
            refs[name] = await services.secrets.put(deployment_id, name, value.get_secret_value())
    return refs


async def _undo(
    services: Services, body: CreateDeployment, tenant: str, deployment_id: str, holder: str
) -> Deployment | None:
    """After a failed create: the record if it was written after all, else None with the
    slot released and the secrets removed. The slot goes first, in the transaction that
    finds no record, so no record can be written afterwards and the secrets are free to go.
    When the store cannot say, nothing is removed: the slot's lease runs out and the
    recount releases it if no record appears."""
    try:
        made = await services.store.quotas.undo(tenant, deployment_id, holder)
    except VisgateError as exc:
        log.warning("create_outcome_unknown", error_type=exc.type, error=exc.message)
        return None
    if made is not None:
        log.info("create_written_after_all", deployment_id=deployment_id)
        return made
    if any(getattr(body, field) is not None for field in SECRET_FIELDS):
        try:
            await services.secrets.delete_for(deployment_id)
        except VisgateError as exc:
            log.warning("secret_cleanup_failed", error_type=exc.type, error=exc.message)
    return None


async def request_delete(services: Services, deployment_id: str, tenant: str) -> Deployment:
    """Start teardown; repeatable. The record reads `deleting`, then `deleted`."""
    now = time.time()
    dep = await services.store.deployments.mutate(
        deployment_id, lambda d: d.request_delete(now), tenant=tenant
    )
    services.poke()
    log.info("deployment_delete_requested", status=dep.status.value)
    return dep


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    deployment: Deployment
    accepted: bool  # False: a repeat, or a report about a point the deployment is past


async def receive_callback(
    services: Services, deployment_id: str, body: WorkerCallback
) -> CallbackOutcome:
    """Apply a worker's report (the caller has checked its token) and queue any webhook."""
    now = time.time()
    changed = False

    def apply(dep: Deployment) -> bool:
        nonlocal changed
        changed = apply_worker_callback(dep, body, now)
        return changed

    dep = await services.store.deployments.mutate(deployment_id, apply)
    if changed and dep.pending_events:
        # Queue the webhook now rather than at the reconciler's next pass: ready → webhook
        # latency is what users feel. The reconciler re-queues idempotently after a crash.
        await queue_pending_events(services, dep)
    elif body.status == "failed" and dep.status in SERVING:
        # One worker failing after ready does not end a serving endpoint; the operator hears.
        log.warning("worker_failed_while_serving", deployment_id=dep.id, error=body.error)
    services.poke()
    return CallbackOutcome(dep, changed)


async def queue_pending_events(services: Services, dep: Deployment) -> list[str]:
    """Turn the record's pending webhook events into delivery records (one per event, however
    often this runs); returns the events held back, which stay pending. Where a webhook
    sender runs in this process, a new event goes straight to it: the record is written
    leased to that sender, which sends at once, so a `ready` webhook never waits for the
    delivery loop's next claim behind other work. Otherwise (an API-only process, a sender
    at its concurrency cap) the record is queued and the delivery loop woken. Either way the
    record is the outbox: a send that never finishes (the process died) comes due again
    when its lease runs out.

    `deployment.ready` waits for the endpoint: a worker's callback can be written before
    its create step's result (or after that result was lost with its process), and a ready
    event is built once, so it must name the endpoint the user is to call. The reconciler
    records the endpoint (found by name) and queues it then."""
    held = [e for e in dep.pending_events if e == "deployment.ready" and not dep.endpoint_id]
    if not dep.user_webhook_url:
        return held
    now = time.time()
    queued = False
    for event_type in dep.pending_events:
        if event_type in held:
            continue
        delivery = build_delivery(event_type, dep, dep.user_webhook_url, now)
        if not await services.send_delivery_now(delivery):
            await services.store.deliveries.add(delivery)
            queued = True
    if queued:
        services.poke_deliveries()
    return held


async def secret(services: Services, dep: Deployment, name: str) -> str | None:
    """One of the deployment's own secrets (`runpod_api_key`, `hf_token`), or None."""
    ref = dep.secret_refs.get(name)
    return await services.secrets.get(ref) if ref else None


async def provider_key(services: Services, dep: Deployment) -> str:
    """The key a deployment's provider calls use: its own if it brought one, else the
    operator's; empty for a provider that takes no key."""
    key = await secret(services, dep, "runpod_api_key")
    if key:
        return key
    if services.settings.runpod_api_key is not None:
        return services.settings.runpod_api_key.get_secret_value()
    if services.provider is not None and not services.provider.needs_api_key:
        return ""
    raise RunpodAuthError("no Runpod API key: pass user_runpod_key or set RUNPOD_API_KEY")

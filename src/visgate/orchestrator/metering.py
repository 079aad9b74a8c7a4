"""Samples of a deployment's billed workers, for the spend estimate (domain/meter.py).

Taken where the reconciler reads the endpoint's health anyway (while loading), every
`SAMPLE_SECONDS` while it serves, and once more (no workers) when its endpoint is removed.
Sampling never fails a step: a health read that fails skips one sample.
"""

from __future__ import annotations

import time

from visgate.cost.pricing import billed_workers, unit_price_per_hour
from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import VisgateError
from visgate.domain.meter import SAMPLE_SECONDS, Meter
from visgate.logging import get_logger
from visgate.orchestrator.results import Change, StepResult, nothing, provider_of
from visgate.providers.base import WorkerCounts
from visgate.services import Services

log = get_logger(__name__)


def start_meter(dep: Deployment, now: float) -> None:
    if dep.meter is None:
        dep.meter = Meter(at=now)


def sampled(workers: WorkerCounts) -> Change:
    """Record `workers` as the count from now on, priced at the pool serving the record."""
    count = billed_workers(workers)

    def facts(d: Deployment, now: float) -> None:
        start_meter(d, now)
        assert d.meter is not None
        d.meter.sample(now, count, unit_price_per_hour(d))

    return facts


def stop_meter(dep: Deployment, now: float) -> None:
    """The endpoint is gone: no worker is billed from now on."""
    if dep.meter is not None:
        dep.meter.sample(now, 0, dep.meter.unit_price_per_hour)


async def serving(services: Services, dep: Deployment) -> StepResult:
    """A serving deployment's periodic step: one meter sample, then due again in
    `SAMPLE_SECONDS` (or at its expiry, whichever comes first: the loop sees to that).
    A sample taken less than half that ago (the loading step's last health read, when the
    record has just become ready) stands: no read until the next one is due."""
    if dep.meter is not None and time.time() - dep.meter.at < SAMPLE_SECONDS / 2:
        next_at = dep.meter.at + SAMPLE_SECONDS
        return StepResult(advance=lambda d, at: setattr(d, "due_at", next_at))
    facts: Change = nothing
    if dep.endpoint_id:
        try:
            key = await provider_key(services, dep)
            health = await provider_of(services).endpoint_health(dep.endpoint_id, api_key=key)
            facts = sampled(health.workers)
        except VisgateError as exc:
            log.info("meter_sample_skipped", error_type=exc.type, error=exc.message)

    def again(d: Deployment, at: float) -> None:
        d.due_at = at + SAMPLE_SECONDS

    return StepResult(facts=facts, advance=again)

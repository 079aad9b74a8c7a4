"""Samples of a deployment's billed workers, for the spend estimate (domain/meter.py).

Taken where the reconciler reads the endpoint's health anyway (while loading), every
`SAMPLE_SECONDS` while it serves, and once more (no workers) when its endpoint is removed.
Sampling never fails a step: a health read that fails skips one sample.
"""

from __future__ import annotations

import time

from visgate.cost.pricing import billed_workers
from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import VisgateError
from visgate.domain.meter import SAMPLE_SECONDS
from visgate.logging import get_logger
from visgate.orchestrator.results import Facts, StepResult, provider_of, wait
from visgate.services import Services

log = get_logger(__name__)


async def serving(services: Services, dep: Deployment) -> StepResult:
    """A serving deployment's periodic step: one meter sample, then due again in
    `SAMPLE_SECONDS` (or at its expiry, whichever comes first: the loop sees to that).
    A sample taken less than half that ago (the loading step's last health read, when the
    record has just become ready) stands: no read until the next one is due."""
    now = time.time()
    if dep.meter is not None and now - dep.meter.at < SAMPLE_SECONDS / 2:
        return wait(dep.meter.at + SAMPLE_SECONDS - now)
    facts = Facts()
    if dep.endpoint_id:
        try:
            key = await provider_key(services, dep)
            health = await provider_of(services).endpoint_health(dep.endpoint_id, api_key=key)
            facts = Facts(billed_workers=billed_workers(health.workers))
        except VisgateError as exc:
            log.info("meter_sample_skipped", error_type=exc.type, error=exc.message)
    return wait(SAMPLE_SECONDS, facts=facts)

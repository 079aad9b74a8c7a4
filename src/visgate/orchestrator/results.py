"""What a step hands back to the loop, and the provider lookup every step shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from visgate.domain.deployment import Deployment
from visgate.domain.errors import RunpodAPIError
from visgate.providers.base import GpuProvider
from visgate.services import Services

Change = Callable[[Deployment, float], None]


def nothing(dep: Deployment, now: float) -> None:
    return None


@dataclass(frozen=True)
class StepResult:
    advance: Change = nothing
    facts: Change = nothing


Step = Callable[[Services, Deployment], Awaitable[StepResult]]


def provider_of(services: Services) -> GpuProvider:
    if services.provider is None:
        raise RunpodAPIError("no GPU provider is configured on this control plane")
    return services.provider

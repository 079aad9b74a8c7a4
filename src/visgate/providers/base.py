"""The `GpuProvider` protocol: what the reconciler needs from a GPU cloud.

Rules every backend keeps (a new backend can be written from these docstrings alone):
- Calls take the API key per call: each deployment may bring its own provider key.
- `ensure_endpoint` is idempotent by `spec.name`: it looks up a template and an endpoint
  of that name first and reuses them, so a step retried after a crash never makes a second.
- `teardown` treats "not found" as success and may be called any number of times.
- Errors are `visgate.domain.errors` types: `RunpodAuthError` (bad key, permanent),
  `RunpodInsufficientGPUError` (quota / no pools left), `RunpodUnavailableError`
  (429, 5xx, timeouts, after the backend's own retries: the caller retries later),
  `RunpodAPIError` (anything else the provider refused). Keys never appear in messages.
- `endpoint_spend` answers None, never 0, when it has no billed figure: a caller can then
  tell "nothing billed" from "unknown" and estimate instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# Awaited right before each call that makes something billable; raises (the caller's
# `LeaseLostError`) when the caller may no longer act, so nothing more is created.
Fence = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What to run: one template (image + env) and one serverless endpoint of the same name."""

    name: str  # "visgate-<deployment_id>"
    image: str
    env: dict[str, str]
    gpu_pools: list[str]  # ordered, cheapest first; at most 3 are sent
    workers_min: int = 0
    workers_max: int = 1
    idle_timeout_s: int = 60
    container_disk_gb: int = 40
    flashboot: bool = True
    execution_timeout_ms: int = 600_000
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: int = 4
    # A Runpod container registry credential id, for a worker image in a private registry;
    # sent as the template's `containerRegistryAuthId` only when set.
    registry_auth_id: str | None = None
    # Data centres workers may run in (Runpod ids such as `EU-RO-1`); empty: anywhere.
    data_center_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointRef:
    endpoint_id: str
    template_id: str
    name: str
    url: str  # base URL of the endpoint's job API, e.g. https://api.runpod.ai/v2/<id>
    gpu_pools: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkerCounts:
    idle: int = 0
    initializing: int = 0
    ready: int = 0
    running: int = 0
    throttled: int = 0
    unhealthy: int = 0

    @property
    def stalled(self) -> bool:
        """Workers exist only as throttled: the pools have no free GPU for us."""
        return (
            self.throttled > 0 and (self.idle + self.ready + self.running + self.initializing) == 0
        )


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    workers: WorkerCounts
    jobs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderEndpoint:
    """One endpoint as the provider lists it (for the orphan sweeper)."""

    endpoint_id: str
    name: str
    template_id: str | None = None
    gpu_pools: list[str] = field(default_factory=list)
    workers_min: int = 0
    workers_max: int = 0


@dataclass(frozen=True, slots=True)
class GpuType:
    """One GPU type as the provider's catalogue lists it. `pool` (the serverless pool it
    belongs to), `availability` (`NONE`|`LOW`|`MEDIUM`|`HIGH`) and `price_per_hour` (USD per
    GPU, serverless list price) are None where the backend's answer does not carry them."""

    id: str
    display_name: str
    memory_gb: float
    pool: str | None = None
    availability: str | None = None
    price_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerLogLine:
    """One line a worker printed, as the provider reports it (secrets not yet masked)."""

    worker_id: str
    line: str
    ts: str | None = None  # ISO 8601 where the provider stamps lines
    source: str | None = None  # e.g. `container` or `system` on Runpod


@runtime_checkable
class GpuProvider(Protocol):
    # False: calls ignore `api_key`, so a deployment needs neither its own key nor the
    # operator's (the local provider).
    needs_api_key: bool
    # The worker image when the operator configures none (RUNPOD_TEMPLATE_IMAGE); None: the
    # operator must configure one.
    default_image: str | None

    async def ensure_endpoint(
        self,
        spec: EndpointSpec,
        *,
        api_key: str,
        fresh: bool = False,
        fence: Fence | None = None,
    ) -> EndpointRef:
        """Create template + endpoint named `spec.name`, or return the existing ones.

        `fresh`: the caller knows no earlier try reached the provider (it records that before
        its first call), so the first attempt may skip the by-name look-ups; any repeat
        (after a lost answer, a name clash) looks up again. `fence` is awaited right before
        the template's and the endpoint's creation (each try), and what it raises ends the
        call: a caller that lost its right to act makes nothing more."""
        ...

    async def find_endpoint(self, name: str, *, api_key: str) -> EndpointRef | None:
        """The endpoint of that name, or None."""
        ...

    async def set_gpu_pools(
        self, ref: EndpointRef, spec: EndpointSpec, *, api_key: str
    ) -> EndpointRef:
        """Widen or change the endpoint's pools (every other field resent from `spec`)."""
        ...

    async def endpoint_health(self, endpoint_id: str, *, api_key: str) -> EndpointHealth:
        """Worker and job counts as the endpoint's `/health` reports them."""
        ...

    async def teardown(self, name: str, *, api_key: str, endpoint_id: str | None = None) -> None:
        """Scale to zero, delete the endpoint, then its template. Gone already is success.

        With `endpoint_id`, only that one of the endpoints called `name` goes and the
        template stays (a duplicate beside the endpoint a record names)."""
        ...

    async def list_endpoints(self, *, api_key: str) -> list[ProviderEndpoint]:
        """Every endpoint on the account (the sweeper filters `visgate-*`)."""
        ...

    async def gpu_types(self, *, api_key: str) -> list[GpuType]: ...

    async def worker_logs(
        self, endpoint_id: str, *, api_key: str, lines: int
    ) -> list[WorkerLogLine]:
        """The last `lines` lines of the endpoint's workers, oldest first, bounded in size.
        Raises `WorkerLogsUnavailableError` where the backend has no way to read them."""
        ...

    async def endpoint_spend(self, endpoint_id: str, *, api_key: str, since: float) -> float | None:
        """USD Runpod has billed for this serverless endpoint since `since` (epoch seconds),
        or None where the backend cannot read billing (GraphQL, local) or the account has no
        billing record for the endpoint yet (billing lags usage)."""
        ...

    async def submit_job(
        self, endpoint_id: str, body: dict[str, Any], *, api_key: str, sync: bool = False
    ) -> dict[str, Any]:
        """`/run` (or `/runsync` when sync) with body `{input, webhook?, policy?}`."""
        ...

    async def job_status(
        self, endpoint_id: str, job_id: str, *, api_key: str
    ) -> dict[str, Any]: ...

    async def cancel_job(
        self, endpoint_id: str, job_id: str, *, api_key: str
    ) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def endpoint_name(deployment_id: str) -> str:
    """Template and endpoint share this name, so a retried step finds what it made."""
    return f"visgate-{deployment_id}"

"""What a step hands back to the loop: plain data, applied to the freshest record in one place.

A step runs outside any transaction, on the record as it was claimed; by the time its result
is written a worker's callback or a DELETE may have moved the record on. So a result has two
parts. `facts` are things now true in the world (an endpoint that exists, a queued warm-up
job, the workers billed now): they are recorded whatever the record's status. Everything
else is the step's decision (the next status, field values, log lines, when it is due
again): it applies only if the record is still in the status the step ran for.

A `checkpoint` is a write the step needs on the record before it goes on (endpoint creation
notes that it began, so a try after a crash looks up by name first): the loop writes it under
the lease, keeping the lease, then runs the checkpoint's `then` step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from visgate.cost.pricing import unit_price_per_hour
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import RunpodAPIError
from visgate.domain.status import Status
from visgate.providers.base import EndpointRef, GpuProvider
from visgate.registry.catalogue import GpuCatalogue
from visgate.services import Services


@dataclass(frozen=True, slots=True)
class Move:
    """Go to `status`; `message` is the log line of that transition."""

    status: Status
    message: str


@dataclass(frozen=True, slots=True)
class Fail:
    """End in `failed` with this error (where the status still may fail)."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Expire:
    """The ttl ran out: start the teardown."""


Transition = Move | Fail | Expire


@dataclass(frozen=True, slots=True)
class LogLine:
    message: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Facts:
    """What is now true in the world, recorded on the record whatever its status."""

    endpoint: EndpointRef | None = None
    warmup_job_id: str | None = None
    billed_workers: int | None = None  # a meter sample: workers billed from now on

    def record(self, d: Deployment, now: float, catalogue: GpuCatalogue) -> None:
        if self.endpoint is not None:
            _record_endpoint(d, self.endpoint, now)
        if self.warmup_job_id is not None and d.warmup_job_id is None:
            d.warmup_job_id = self.warmup_job_id
            d.log(now, f"warm-up job {self.warmup_job_id} queued so that a worker starts")
        if self.billed_workers is not None:
            d.sample_workers(now, self.billed_workers, unit_price_per_hour(d, catalogue))


def _record_endpoint(d: Deployment, ref: EndpointRef, now: float) -> None:
    if d.endpoint_id != ref.endpoint_id:
        d.endpoint_id, d.template_id, d.endpoint_url = ref.endpoint_id, ref.template_id, ref.url
        d.log(now, f"endpoint {ref.endpoint_id} ({ref.name}) on {', '.join(ref.gpu_pools)}")
    d.needs_teardown = True
    d.start_meter(now)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Fields to write under the lease before the step goes on as `then`."""

    fields: Mapping[str, Any]
    then: Step


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's decision and the facts it learnt.

    Applied in this order: `fields`, `resources_removed`, `logs`, `transition`, `events`,
    then `due_in` (seconds from the write; None: nothing is due until something happens to
    the record).
    """

    transition: Transition | None = None
    due_in: float | None = 0.0
    fields: Mapping[str, Any] = field(default_factory=dict)
    logs: tuple[LogLine, ...] = ()
    events: tuple[str, ...] = ()  # webhook events to queue
    resources_removed: bool = False  # the provider holds nothing of it any more
    facts: Facts = field(default_factory=Facts)
    checkpoint: Checkpoint | None = None
    # Run when the result cannot be written because the lease was lost: removes what the
    # step made if the record no longer wants it (fencing.py).
    undo: Callable[[], Awaitable[None]] | None = None

    def advance(self, d: Deployment, now: float) -> None:
        """Apply the step's decision; the loop calls this only while the record is still in
        the status the step ran for. The one place a step changes a status."""
        set_fields(d, self.fields)
        if self.resources_removed:
            d.needs_teardown = False
            d.teardown_blocked = None
            d.stop_meter(now)
        for line in self.logs:
            d.log(now, line.message, level=line.level)
        match self.transition:
            case Move(status, message):
                d.move_to(status, now, message)
            case Fail(error):
                d.fail(now, error)
            case Expire():
                d.request_delete(now, expired=True)
        d.pending_events.extend(self.events)
        if self.due_in is None:
            d.due_at = None
        elif self.due_in > 0:
            d.due_at = now + self.due_in
        else:
            d.due_now()


def set_fields(d: Deployment, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if name not in Deployment.model_fields:
            raise AttributeError(f"a step set an unknown field {name!r}")
        setattr(d, name, value)


def wait(due_in: float | None, *, facts: Facts | None = None, **fields: Any) -> StepResult:
    """Stay in the status: due again in `due_in` seconds, with these field values."""
    return StepResult(due_in=due_in, fields=fields, facts=facts or Facts())


Step = Callable[[Services, Deployment], Awaitable[StepResult]]


def provider_of(services: Services) -> GpuProvider:
    if services.provider is None:
        raise RunpodAPIError("no GPU provider is configured on this control plane")
    return services.provider

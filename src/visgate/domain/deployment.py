"""The deployment record: what the store keeps and the API shows.

Secrets never live here: `secret_refs` holds opaque references into the SecretStore.
Times are epoch seconds (floats) inside, ISO 8601 on the wire.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from visgate.domain.errors import VisgateError
from visgate.domain.meter import Meter
from visgate.domain.status import HOLDS_RESOURCES, Status, check_transition
from visgate.kit import iso

MAX_LOGS = 200


def new_deployment_id() -> str:
    return "dep_" + secrets.token_hex(8)


class LogEntry(BaseModel):
    at: float
    message: str
    level: str = "info"
    status: Status | None = None

    def public(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "level": self.level,
            "status": self.status,
            "message": self.message,
        }


class StatusEvent(BaseModel):
    """One status change; `seq` is the SSE event id, so a client can resume. `message` is
    the log line the change wrote, kept here because the log moves on (and is trimmed)
    while a replayed event must still say what its own change found."""

    seq: int
    status: Status
    at: float
    message: str = ""


class ErrorInfo(BaseModel):
    type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, VisgateError):
            return cls(type=exc.type, message=exc.message)
        return cls(type="InternalError", message=f"{type(exc).__name__}: {exc}"[:500])


class TeardownBlocked(BaseModel):
    """A teardown the provider keeps refusing (a revoked key, a refused delete): what may
    still be left, on which account, why, and when it is tried again. Shown on GET and
    sent once as `deployment.teardown_blocked`; cleared when the teardown goes through."""

    since: float
    account: str  # "user" (the key given as user_runpod_key) or "operator"
    left: list[str]  # what may still exist on that account, e.g. "endpoint visgate-dep_…"
    error: ErrorInfo
    retry_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "account": self.account,
            "left": list(self.left),
            "error": self.error.model_dump(),
            "retry_at": iso(self.retry_at),
        }


class Deployment(BaseModel):
    model_config = ConfigDict(validate_assignment=False)

    id: str = Field(default_factory=new_deployment_id)
    tenant: str
    key_id: str | None = None  # hash of the API key that created it: whose webhook secret signs
    model_id: str
    status: Status = Status.validating
    created_at: float
    updated_at: float
    status_since: float
    ready_at: float | None = None
    deadline_at: float | None = None  # ready timeout, set when the endpoint exists

    gpu_tier: str | None = None
    vram_gb: float | None = None
    gpu_pools: list[str] = Field(default_factory=list)
    gpu: str | None = None  # what the worker reported, else the pool list
    # Set before the first create call: from then on a try looks up by name before creating.
    create_started: bool = False
    endpoint_id: str | None = None
    template_id: str | None = None
    endpoint_url: str | None = None
    warmup_job_id: str | None = None  # the one job queued so Runpod starts a worker
    worker: dict[str, Any] | None = None

    # Limits the user chose: the endpoint's worker cap, where it may run, how long it lives.
    max_workers: int = 1
    region: str | None = None  # as asked ("EU", "EU-RO-1")
    data_center_ids: list[str] = Field(default_factory=list)  # what `region` expands to
    ttl_seconds: int | None = None
    expires_at: float | None = None  # ttl after ready; after creation until it is ready
    delete_reason: str | None = None  # "requested" (a DELETE) or "expired" (its ttl)
    meter: Meter | None = None  # estimated spend, sampled by the reconciler

    user_webhook_url: str | None = None
    secret_refs: dict[str, str] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    logs: list[LogEntry] = Field(default_factory=list)
    history: list[StatusEvent] = Field(default_factory=list)

    pending_events: list[str] = Field(default_factory=list)  # webhook events not yet queued
    needs_teardown: bool = False  # cloud resources may exist and must be removed
    # When the by-name sweep after a teardown is due; the secrets (the provider key) are
    # kept until it has run (orchestrator/teardown.py).
    final_sweep_at: float | None = None
    teardown_blocked: TeardownBlocked | None = None
    attempts: int = 0  # consecutive transient failures of the current step
    stall_checks: int = 0  # consecutive loading checks that saw only throttled workers
    due_at: float | None = None
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    version: int = 0

    # The status this object had when it was read, and its last history seq then: the store
    # checks every move made since (one change may take several steps, e.g. a worker's ready
    # while the record still reads creating_endpoint goes through loading_model).
    _loaded_status: Status | None = PrivateAttr(default=None)
    _loaded_seq: int = PrivateAttr(default=0)

    @classmethod
    def new(cls, *, tenant: str, model_id: str, now: float, **fields: Any) -> Deployment:
        dep = cls(
            tenant=tenant,
            model_id=model_id,
            created_at=now,
            updated_at=now,
            status_since=now,
            due_at=now,
            **fields,
        )
        if dep.ttl_seconds:
            dep.expires_at = now + dep.ttl_seconds
        accepted = f"deployment of {model_id} accepted"
        dep.history.append(StatusEvent(seq=1, status=dep.status, at=now, message=accepted))
        dep.log(now, accepted)
        return dep

    @property
    def loaded_status(self) -> Status | None:
        return self._loaded_status

    def mark_loaded(self) -> Deployment:
        self._loaded_status = self.status
        self._loaded_seq = self.history[-1].seq if self.history else 0
        return self

    def status_path(self) -> list[Status]:
        """The statuses this object went through since it was read, starting with the read
        one; empty for a record that was never stored."""
        if self._loaded_status is None:
            return []
        path = [self._loaded_status]
        path += [event.status for event in self.history if event.seq > self._loaded_seq]
        if path[-1] != self.status:  # a status set without move_to still gets checked
            path.append(self.status)
        return path

    def log(self, now: float, message: str, level: str = "info") -> None:
        self.logs.append(LogEntry(at=now, message=message, level=level, status=self.status))
        if len(self.logs) > MAX_LOGS:
            del self.logs[: len(self.logs) - MAX_LOGS]
        self.updated_at = now

    def move_to(self, status: Status, now: float, message: str | None = None) -> None:
        check_transition(self.status, status)
        message = message or f"status {status.value}"
        if status != self.status:
            self.status = status
            self.status_since = now
            self.attempts = 0
            self.stall_checks = 0
            seq = self.history[-1].seq + 1 if self.history else 1
            self.history.append(StatusEvent(seq=seq, status=status, at=now, message=message))
            if status is Status.ready:
                self.ready_at = now
                if self.ttl_seconds:
                    self.expires_at = now + self.ttl_seconds
        self.log(now, message)

    def due_now(self) -> None:
        """Due at once, in its place in line: claims take due records oldest `due_at` first,
        and this one's is its creation time, so the next step of an earlier deployment runs
        before the first steps of a burst of newer ones (a due time of "now" would send it
        behind every deployment posted while its last step ran, and a steady stream of
        POSTs would hold every later step back)."""
        self.due_at = self.created_at

    def fail(self, now: float, error: ErrorInfo) -> None:
        """End in `failed`: the reconciler tears down what was made and the user is told.

        Checked before anything is written, so a refused failure leaves the record whole."""
        check_transition(self.status, Status.failed)
        self.error = error
        self.needs_teardown = self.needs_teardown or self.status in HOLDS_RESOURCES
        self.move_to(Status.failed, now, f"failed: {error.type}: {error.message}")
        self.pending_events.append("deployment.failed")
        self.due_now()

    def request_delete(self, now: float, *, expired: bool = False) -> bool:
        """Start teardown from any status, for a DELETE or because the ttl ran out; False
        when already on the way. A DELETE of a record whose teardown keeps failing makes it
        due at once (True: that is written), instead of after its long backoff."""
        if self.deletion_begun:
            retrying = self.teardown_blocked is not None or self.attempts > 0
            if self.status is Status.deleting and not expired and retrying:
                self.due_now()
                return True
            return False
        self.delete_reason = "expired" if expired else "requested"
        message = (
            f"expired: ttl_seconds={self.ttl_seconds} ran out; deleting"
            if expired
            else "delete requested"
        )
        self.move_to(Status.deleting, now, message)
        self.due_now()
        return True

    @property
    def deletion_begun(self) -> bool:
        """A DELETE or the ttl has started its teardown (or finished it): no second one."""
        return self.status in (Status.deleting, Status.deleted)

    @property
    def _expiry_pending(self) -> float | None:
        """The expiry still to act on: none without a ttl or once deletion has begun."""
        if self.deletion_begun:
            return None
        return self.expires_at

    def is_expired(self, now: float) -> bool:
        """Its ttl ran out and nothing has started deleting it yet."""
        expiry = self._expiry_pending
        return expiry is not None and now >= expiry

    def keep_expiry_due(self) -> None:
        """A record with a ttl is due by its expiry at the latest, so a loop claims it then
        (every step that goes idle leaves `due_at` empty or later)."""
        expiry = self._expiry_pending
        if expiry is not None:
            self.due_at = expiry if self.due_at is None else min(self.due_at, expiry)

    def sample_workers(self, now: float, workers: int, unit_price_per_hour: float | None) -> None:
        """`workers` are billed from now on at that price; the meter starts with the first."""
        self.start_meter(now)
        assert self.meter is not None
        self.meter.sample(now, workers, unit_price_per_hour)

    def start_meter(self, now: float) -> None:
        """The endpoint exists: spend counts from now (nothing yet until a sample)."""
        if self.meter is None:
            self.meter = Meter(at=now)

    def stop_meter(self, now: float) -> None:
        """The endpoint is gone: no worker is billed from now on."""
        if self.meter is not None:
            self.meter.sample(now, 0, self.meter.unit_price_per_hour)

    @property
    def counts_against_quota(self) -> bool:
        """Holds (or may still hold) a slot of its tenant's quota: everything but `deleted`
        and a `failed` record whose cloud resources are removed."""
        if self.status is Status.deleted:
            return False
        return not (self.status is Status.failed and not self.needs_teardown)

    def public(self) -> dict[str, Any]:
        """The GET shape (README, "API"). Never includes secret refs, leases or tenant."""
        return {
            "deployment_id": self.id,
            "status": self.status.value,
            "model_id": self.model_id,
            "gpu": self.gpu or (",".join(self.gpu_pools) if self.gpu_pools else None),
            "gpu_tier": self.gpu_tier,
            "vram_gb": self.vram_gb,
            "endpoint_id": self.endpoint_id,
            "endpoint_url": self.endpoint_url,
            "webhook_url": self.user_webhook_url,
            "max_workers": self.max_workers,
            "region": self.region,
            "expires_at": iso(self.expires_at),
            "delete_reason": self.delete_reason,
            "logs": [entry.public() for entry in self.logs],
            "error": self.error.model_dump() if self.error else None,
            "teardown_blocked": self.teardown_blocked.public() if self.teardown_blocked else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "ready_at": iso(self.ready_at),
        }

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Deployment:
        return cls.model_validate(doc).mark_loaded()

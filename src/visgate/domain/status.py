"""Deployment statuses (wire values, never renamed) and the ONE transition table."""

from __future__ import annotations

from enum import StrEnum

from visgate.domain.errors import IllegalTransitionError


class Status(StrEnum):
    validating = "validating"
    selecting_gpu = "selecting_gpu"
    creating_endpoint = "creating_endpoint"
    downloading_model = "downloading_model"
    loading_model = "loading_model"
    ready = "ready"
    failed = "failed"
    webhook_failed = "webhook_failed"
    deleting = "deleting"
    deleted = "deleted"


S = Status

# Every status change in the service goes through `check_transition`. Failing and
# deleting are possible from every status before `ready`; `deleted` is the only true end.
#
# `ready` has no way to `failed`: the user was told the endpoint serves and may be sending
# it jobs, so nothing the control plane concludes later (a ready-wait clock, a provider
# error, a step that ran for an older status) may fail it and tear the endpoint down. Only
# the user ends it (DELETE); the webhook sender may mark that its `ready` never got through.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.validating: frozenset({S.selecting_gpu, S.failed, S.deleting}),
    S.selecting_gpu: frozenset({S.creating_endpoint, S.failed, S.deleting}),
    S.creating_endpoint: frozenset({S.downloading_model, S.loading_model, S.failed, S.deleting}),
    S.downloading_model: frozenset({S.loading_model, S.ready, S.failed, S.deleting}),
    S.loading_model: frozenset({S.ready, S.failed, S.deleting}),
    S.ready: frozenset({S.webhook_failed, S.deleting}),
    S.webhook_failed: frozenset({S.deleting}),
    S.failed: frozenset({S.deleting}),
    S.deleting: frozenset({S.deleted}),
    S.deleted: frozenset(),
}

# Statuses where a client following progress can stop watching.
SETTLED: frozenset[Status] = frozenset({S.ready, S.failed, S.webhook_failed, S.deleted})

# Statuses the reconciler still has work for (a step, a timeout, a teardown).
ACTIVE: frozenset[Status] = frozenset(
    {
        S.validating,
        S.selecting_gpu,
        S.creating_endpoint,
        S.downloading_model,
        S.loading_model,
        S.deleting,
    }
)

# Statuses whose cloud resources may exist and must be removed on failure or delete.
HOLDS_RESOURCES: frozenset[Status] = frozenset(
    {S.creating_endpoint, S.downloading_model, S.loading_model, S.ready, S.webhook_failed}
)


# Statuses whose endpoint serves the user's jobs.
SERVING: frozenset[Status] = frozenset({S.ready, S.webhook_failed})


def can_fail(status: Status) -> bool:
    """Whether a step's error may still end the deployment in `failed`. Where it may not
    (teardown, which must finish; a serving deployment, which must keep serving), the
    reconciler retries the step instead."""
    return S.failed in TRANSITIONS[status]


def can_transition(current: Status, new: Status) -> bool:
    return current == new or new in TRANSITIONS[current]


def check_transition(current: Status, new: Status) -> None:
    if not can_transition(current, new):
        raise IllegalTransitionError(f"illegal status change {current.value} -> {new.value}")

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
# deleting are possible from any live status; `deleted` is the only true end.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.validating: frozenset({S.selecting_gpu, S.failed, S.deleting}),
    S.selecting_gpu: frozenset({S.creating_endpoint, S.failed, S.deleting}),
    S.creating_endpoint: frozenset({S.downloading_model, S.loading_model, S.failed, S.deleting}),
    S.downloading_model: frozenset({S.loading_model, S.ready, S.failed, S.deleting}),
    S.loading_model: frozenset({S.ready, S.failed, S.deleting}),
    S.ready: frozenset({S.webhook_failed, S.failed, S.deleting}),
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


def can_transition(current: Status, new: Status) -> bool:
    return current == new or new in TRANSITIONS[current]


def check_transition(current: Status, new: Status) -> None:
    if not can_transition(current, new):
        raise IllegalTransitionError(f"illegal status change {current.value} -> {new.value}")

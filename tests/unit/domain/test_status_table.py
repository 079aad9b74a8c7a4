"""The one transition table: every allowed move works, every other raises."""

from __future__ import annotations

import itertools

import pytest

from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.errors import IllegalTransitionError
from visgate.domain.status import TRANSITIONS, Status


def test_wire_values_are_the_contract() -> None:
    assert [s.value for s in Status] == [
        "validating",
        "selecting_gpu",
        "creating_endpoint",
        "downloading_model",
        "loading_model",
        "ready",
        "failed",
        "webhook_failed",
        "deleting",
        "deleted",
    ]


@pytest.mark.parametrize(("current", "new"), list(itertools.product(Status, Status)))
def test_every_pair_follows_the_table(current: Status, new: Status) -> None:
    dep = Deployment.new(tenant="t", model_id="a/b", now=0.0)
    dep.status = current
    if new == current or new in TRANSITIONS[current]:
        dep.move_to(new, 1.0)
        assert dep.status is new
    else:
        with pytest.raises(IllegalTransitionError):
            dep.move_to(new, 1.0)
        assert dep.status is current


def test_deleted_is_the_only_end_and_everything_live_can_be_deleted() -> None:
    assert TRANSITIONS[Status.deleted] == frozenset()
    for status in Status:
        if status not in (Status.deleting, Status.deleted):
            assert Status.deleting in TRANSITIONS[status], status


def test_status_changes_are_numbered_for_event_streams() -> None:
    dep = Deployment.new(tenant="t", model_id="a/b", now=0.0)
    dep.move_to(Status.selecting_gpu, 1.0)
    dep.move_to(Status.selecting_gpu, 2.0)  # not a change: no event
    dep.fail(3.0, ErrorInfo(type="X", message="boom"))
    assert [(e.seq, e.status) for e in dep.history] == [
        (1, Status.validating),
        (2, Status.selecting_gpu),
        (3, Status.failed),
    ]
    assert dep.pending_events == ["deployment.failed"]
    assert dep.needs_teardown is False  # nothing was created before selecting a GPU

"""User-webhook retries end to end, through `visgate serve`: a receiver that always fails
exhausts the schedule (the deployment reads `webhook_failed`, its endpoint stays up), 410
stops at once, and a 429's `Retry-After` holds the next try back. One stack for the module,
each test with its own deployment and receiver URL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.receivers import Delivery
from tests.support.stack import Stack, run_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

SCHEDULE = "0.2,0.2"  # three tries in all


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("webhooks"), WEBHOOK_RETRY_SCHEDULE=SCHEDULE) as s:
        s.start()
        yield s


def _tries(stack: Stack, dep_id: str) -> list[Delivery]:
    return stack.receiver.by_event().get(f"{dep_id}:deployment.ready", [])


def _logs(final: dict[str, Any]) -> str:
    return json.dumps([e["message"] for e in final["logs"]])


def test_receiver_that_always_fails_exhausts_the_schedule_and_the_endpoint_stays(
    stack: Stack,
) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, user_webhook_url=stack.receiver.url_answering(500))
        final = stack.wait_for(client, dep_id, {"webhook_failed"}, timeout=20)
        time.sleep(0.6)  # past the schedule: nothing more is sent
        tries = _tries(stack, dep_id)
        assert [t.status for t in tries] == [500, 500, 500]
        assert len({t.headers["webhook-id"] for t in tries}) == 1
        assert final["endpoint_url"]
        assert stack.runpod.state.endpoint(f"visgate-{dep_id}") is not None  # still up
        logs = _logs(final)
        for n in (1, 2):
            assert f"try {n} failed (HTTP 500)" in logs
        assert "failed after 3 tries: HTTP 500" in logs


def test_receiver_answering_410_gets_one_try(stack: Stack) -> None:
    with stack.client() as client:
        dep_id = stack.deploy(client, user_webhook_url=stack.receiver.url_answering(410))
        final = stack.wait_for(client, dep_id, {"webhook_failed"}, timeout=20)
        time.sleep(0.8)  # longer than the whole schedule
        assert [t.status for t in _tries(stack, dep_id)] == [410]
        assert "failed after 1 tries" in _logs(final)


def test_429_retry_after_holds_the_next_try_back(stack: Stack) -> None:
    with stack.client() as client:
        url = stack.receiver.url_answering(429, retry_after=1)
        dep_id = stack.deploy(client, user_webhook_url=url)
        tries = wait_for(lambda: (t := _tries(stack, dep_id)) and len(t) >= 2 and t, within=20)
        gap = tries[1].at - tries[0].at
        assert gap >= 1.0, gap  # the schedule alone would have waited 0.2 s
        final = stack.wait_for(client, dep_id, {"webhook_failed"}, timeout=20)
        assert [t.status for t in _tries(stack, dep_id)] == [429, 429, 429]
        assert "next in 1 s" in _logs(final)

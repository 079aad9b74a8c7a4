"""Nothing lost, stuck, duplicated or leaked: SIGKILL the control plane mid-flight, and run
several reconciler processes on one store (SQLite and the Firestore emulator)."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.stack import SETTLED, Stack, emulator_host_for, run_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def _post_many(stack: Stack, client: httpx.Client, n: int, unknown_every: int = 0) -> list[str]:
    ids = []
    for i in range(n):
        model = (
            "nobody/missing-model"
            if unknown_every and i % unknown_every == 0
            else "stabilityai/sdxl-turbo"
        )
        ids.append(stack.deploy(client, model=model))
    return ids


def test_sigkill_three_times_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    with run_stack(tmp_path, VISGATE_LEASE_SECONDS="2") as stack:
        stack.runpod.state.latency_s = 0.02  # steps take long enough to be cut in half
        service = stack.start()
        with stack.client() as client:
            ids = _post_many(stack, client, 100, unknown_every=10)
            for _ in range(3):
                time.sleep(rng.uniform(0.3, 1.5))
                service.kill()
                service = stack.start()
            final = stack.wait_all(client, ids, SETTLED, timeout=180)
        statuses = Counter(d["status"] for d in final.values())
        assert set(statuses) <= {"ready", "failed"}, statuses
        assert statuses["failed"] == 10, statuses  # exactly the unknown models
        for dep in final.values():
            if dep["status"] == "failed":
                assert dep["error"]["type"] == "HuggingFaceModelNotFoundError", dep
        stack.assert_one_endpoint_per_live_deployment(final)

        # Every ready deployment's webhook arrived, each under one stable webhook-id.
        ready = [i for i, d in final.items() if d["status"] == "ready"]
        stack.assert_ready_webhooks(ready, crashes=True)


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def test_two_reconciler_processes_never_create_an_endpoint_twice(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    host = emulator_host_for(store, request)
    with run_stack(
        tmp_path, store=store, emulator_host=host, VISGATE_RECONCILER_CONCURRENCY="8"
    ) as stack:
        stack.runpod.state.latency_s = 0.01
        stack.start("serve")
        worker = stack.start("worker")
        # Both loops are up before work arrives: they must share it.
        wait_for(lambda: "background_started" in worker.log_text(), within=30)
        with stack.client() as client:
            ids = _post_many(stack, client, 50)
            final = stack.wait_all(client, ids, SETTLED, timeout=180)
        assert Counter(d["status"] for d in final.values()) == {"ready": 50}
        stack.assert_one_endpoint_per_live_deployment(final)
        # Both processes did work: the lease let them share, not duplicate.
        assert "status_changed" in worker.log_text()

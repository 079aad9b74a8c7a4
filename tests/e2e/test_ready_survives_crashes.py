"""A deployment the user was told is `ready` stays ready through crashes.

Two `visgate serve` processes share one store: one answers the API and the workers'
callbacks, the other reconciles and is SIGKILLed three times, each time right after Runpod
made an endpoint for it, during a burst of 40 deployments while fake workers call back
0.2-2 s after their endpoint appears, often before the create step's own write (which dies
with its process). The dead process's records come back to its successor only when their
leases run out, past the ready timeout.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.firestore_emulator import free_port
from tests.support.receivers import FakeWorker
from tests.support.stack import SETTLED, Service, emulator_host_for, run_stack

pytestmark = pytest.mark.slow

LEASE_S = 11.0  # how long a dead process's records stay held
READY_TIMEOUT_S = 10  # shorter than that, so a taken-over record is past its ready deadline
COUNT = 40


def _kill_once_it_made_an_endpoint(victim: Service, timeout: float = 15.0) -> None:
    """SIGKILL the process the moment its log says Runpod made an endpoint for it: its
    create step is still queueing the warm-up job, so the step's write dies with it."""
    made = victim.log_text().count("runpod_endpoint_saved")
    deadline = time.monotonic() + timeout
    while victim.log_text().count("runpod_endpoint_saved") == made:
        if time.monotonic() > deadline:
            break  # the other process took all the work: a kill mid-burst still counts
        time.sleep(0.005)
    victim.kill()


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)]
)
def test_ready_deployments_survive_sigkill_of_one_of_two_services(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    host = emulator_host_for(store, request)
    worker = FakeWorker(delay=(0.2, 2.0), seed=14)
    with run_stack(
        tmp_path,
        store=store,
        emulator_host=host,
        worker=worker,
        VISGATE_LEASE_SECONDS=str(LEASE_S),
        READY_TIMEOUT_SECONDS=str(READY_TIMEOUT_S),
    ) as stack:
        stack.runpod.state.latency_s = 0.05  # each Runpod call takes a moment, as it does
        # The survivor answers the API and the workers' callbacks and is never killed; it
        # runs no reconciler, so every create step runs in the victim and each kill lands
        # in one (a survivor that reconciles wins every record its own POST wakes it for).
        stack.start(VISGATE_RECONCILER="false")
        victim = stack.start(port=free_port())
        with stack.client() as client:
            ids: list[str] = []
            burst = threading.Thread(
                target=lambda: ids.extend(stack.deploy(client) for _ in range(COUNT))
            )
            burst.start()
            for _ in range(3):
                _kill_once_it_made_an_endpoint(victim)
                last_kill = time.monotonic()
                victim = stack.start(port=free_port())
            burst.join()
            stack.wait_all(client, ids, SETTLED, timeout=180)
            # Every record the dead processes held has been taken over by now.
            time.sleep(max(0.0, last_kill + LEASE_S + 3 - time.monotonic()))
            final: dict[str, dict[str, Any]] = {
                i: client.get(f"/v1/deployments/{i}").json() for i in ids
            }

        statuses = Counter(d["status"] for d in final.values())
        late = {i: d["error"] for i, d in final.items() if d["status"] != "ready"}
        assert statuses == {"ready": COUNT}, late
        stack.assert_one_endpoint_per_live_deployment(final)
        stack.assert_ready_webhooks(ids, crashes=True)  # one stable webhook-id each
        events = stack.receiver.by_event()
        failed_after_ready = [i for i in ids if f"{i}:deployment.failed" in events]
        assert failed_after_ready == []

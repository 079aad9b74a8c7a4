"""Many Cloud Run instances on one Firestore: three `visgate serve` processes share the
emulator, clients spread across them, one is killed mid-way, and the per-key rate limit
is one budget for all of them."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.firestore_emulator import FirestoreEmulator, free_port
from tests.support.stack import SETTLED, run_stack

pytestmark = [pytest.mark.slow, pytest.mark.firestore]

WINDOW_NEEDED_S = 15.0  # generous: the 60 calls take 2-4 s on the emulator


def test_three_instances_60_deployments_one_killed_midway(
    tmp_path: Path, firestore_emulator: FirestoreEmulator
) -> None:
    with run_stack(tmp_path, store="firestore", emulator_host=firestore_emulator.host) as stack:
        stack.runpod.state.latency_s = 0.01
        instances = [stack.start()] + [stack.start(port=free_port()) for _ in range(2)]
        clients = [stack.client(s.url) for s in instances]
        spread = itertools.cycle(clients)
        ids = [stack.deploy(next(spread)) for _ in range(60)]
        time.sleep(0.5)
        instances[2].kill()  # mid-flight: its leases must expire and move elsewhere

        # Reads through any surviving instance see the same records.
        final = stack.wait_all(clients[1], ids, SETTLED, timeout=240)
        assert Counter(d["status"] for d in final.values()) == {"ready": 60}

        state = stack.runpod.state
        made = Counter(state.created_names("endpoint"))
        assert len(made) == 60 and max(made.values()) == 1, "an endpoint was created twice"

        stack.assert_ready_webhooks(ids, crashes=True)  # one instance was SIGKILLed
        for client in clients:
            client.close()


def test_rate_limit_is_one_budget_across_instances(
    tmp_path: Path, firestore_emulator: FirestoreEmulator
) -> None:
    with run_stack(
        tmp_path,
        store="firestore",
        emulator_host=firestore_emulator.host,
        RATE_LIMIT_PER_MINUTE="30",
        VISGATE_RECONCILER="false",
    ) as stack:
        instances = [stack.start()] + [stack.start(port=free_port()) for _ in range(2)]
        headers = {"Authorization": f"Bearer {stack.key['api_key']}"}
        codes: Counter[int] = Counter()
        # The limit is a fixed one-minute window and the 60 calls take a few seconds: start
        # in a fresh window only when too little of this one is left for all of them.
        left = 60 - time.time() % 60
        if left < WINDOW_NEEDED_S:
            time.sleep(left + 0.2)
        with httpx.Client(headers=headers, timeout=30) as client:
            for i in range(60):
                url = f"{instances[i % 3].url}/v1/deployments"
                codes[client.get(url).status_code] += 1
        assert codes[200] == 30, codes  # not 3 x 30: the counter lives in Firestore
        assert codes[429] == 30, codes

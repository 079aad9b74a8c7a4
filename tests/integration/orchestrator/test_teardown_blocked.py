"""A teardown the provider keeps refusing is visible and bounded: the user revokes the Runpod
key their deployment runs on, and the record says what may still bill on which account and
why, the user gets one `deployment.teardown_blocked` webhook, the tries grow far apart, the
operator lists it (`visgate blocked`), and another DELETE retries at once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from tests.integration.orchestrator.conftest import USER_KEY, Plane
from visgate.deployments.service import request_delete
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status
from visgate.store.deliveries import DELIVERIES
from visgate.webhooks.events import delivery_id

HOOK = "https://hooks.example.com/visgate"


async def _deleting_with_revoked_key(plane: Plane) -> Deployment:
    dep = await plane.place(
        Status.ready,
        secrets={"runpod_api_key": USER_KEY},
        needs_teardown=True,
        gpu_pools=["ADA_24"],
        user_webhook_url=HOOK,
    )
    await plane.endpoint_for(dep, key=USER_KEY)
    plane.runpod.state.api_keys.discard(USER_KEY)  # the user revokes the key on Runpod
    await request_delete(plane.services, dep.id, dep.tenant)
    return dep


async def _blocked_deliveries(plane: Plane, dep: Deployment) -> dict[str, Any] | None:
    return await plane.store.deliveries.backend.get(
        DELIVERIES, delivery_id(dep.id, "deployment.teardown_blocked")
    )


async def test_a_revoked_key_blocks_the_teardown_visibly_and_delete_retries_it(
    plane: Plane,
) -> None:
    dep = await _deleting_with_revoked_key(plane)
    waits = []
    for _ in range(3):
        started = time.time()
        await plane.run()
        fresh = await plane.store.deployments.get(dep.id)
        assert fresh.status is Status.deleting
        assert fresh.due_at is not None
        waits.append(fresh.due_at - started)
        await plane.make_due(dep.id)
    assert waits[0] >= 600 - 1 and waits[0] < waits[1] < waits[2]  # backs off, growing

    shown = fresh.public()["teardown_blocked"]
    assert shown["account"] == "user"
    assert any(item.startswith(f"endpoint visgate-{dep.id}") for item in shown["left"])
    assert shown["error"]["type"] == "RunpodAuthError"
    assert any(e.message.startswith("teardown blocked") for e in fresh.logs)
    assert plane.endpoint(dep) is not None  # still there: Runpod refused every try

    delivery = await _blocked_deliveries(plane, dep)
    assert delivery is not None, "the user was not told the teardown is blocked"
    body = json.loads(delivery["body"])
    assert body["type"] == "deployment.teardown_blocked"
    assert body["data"]["teardown_blocked"]["account"] == "user"
    assert USER_KEY not in delivery["body"]

    listed = [b.id for b in await plane.store.blocked_teardowns.all()]
    assert listed == [dep.id]
    env = {**os.environ, "VISGATE_DB_PATH": str(plane.services.settings.db_path)}
    command = [sys.executable, "-m", "visgate", "blocked", "--json"]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["deployment_id"] for r in rows] == [dep.id] and rows[0]["account"] == "user"

    # The user restores the key and deletes again: the teardown runs at once.
    plane.runpod.state.api_keys.add(USER_KEY)
    await plane.store.deployments.mutate(dep.id, lambda d: setattr(d, "due_at", time.time() + 3600))
    again = await request_delete(plane.services, dep.id, dep.tenant)
    assert again.due_at is not None and again.due_at <= time.time()
    done = await plane.settle(dep.id)
    assert done.status is Status.deleted and done.teardown_blocked is None
    assert plane.endpoint(dep) is None
    assert await plane.store.blocked_teardowns.all() == []

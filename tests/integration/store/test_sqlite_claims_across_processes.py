"""Several reconciler processes on one SQLite file: `claim_due` hands each due record to
exactly one of them (the in-process suite cannot show this: one process serialises its
calls on the store's single thread)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from visgate.domain.deployment import Deployment
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend

CLAIMER = """
import asyncio, json, sys, time
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend

async def main(path, owner, start_at):
    store = Store(SqliteBackend(path))
    while time.time() < start_at:  # every process starts claiming at the same moment
        await asyncio.sleep(0.001)
    got, empty = [], 0
    while empty < 20:
        batch = await store.deployments.claim_due(owner, 3, 600.0)
        got += [d.id for d in batch]
        empty = 0 if batch else empty + 1
    print(json.dumps(got))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


def test_each_due_record_is_claimed_by_exactly_one_process(tmp_path: Path) -> None:
    db = tmp_path / "visgate.db"

    async def seed() -> list[str]:
        store = Store(SqliteBackend(db))
        now = time.time() - 1
        made = [
            await store.deployments.create(Deployment.new(tenant="t", model_id="o/m", now=now))
            for _ in range(150)
        ]
        return [d.id for d in made]

    ids = asyncio.run(seed())
    start_at = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(db), f"proc-{n}", str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    claimed: list[str] = []
    per_process: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        got = json.loads(out)
        claimed += got
        per_process.append(len(got))

    assert sorted(claimed) == sorted(ids)  # every record once: none lost, none twice
    assert sum(1 for n in per_process if n) >= 2, per_process  # they really competed

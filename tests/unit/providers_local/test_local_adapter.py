"""The local adapter speaks Runpod's v2 endpoint routes in front of a worker's handler."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from visgate.providers.local.adapter import WorkerHost, build_app


class StubWorker:
    """A worker double: slow start-up, jobs that echo, fail, or detect overlap."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.busy = threading.Lock()

    def startup(self) -> None:
        time.sleep(0.2)
        self.started.set()

    def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        if not self.busy.acquire(blocking=False):
            raise RuntimeError("entered twice")
        try:
            if job["input"].get("fail"):
                return {"error": "asked to fail"}
            time.sleep(float(job["input"].get("sleep", 0)))
            return {"echo": job["input"]}
        finally:
            self.busy.release()


async def _client(worker: StubWorker):
    host = WorkerHost(worker.startup, worker.handle)
    app = build_app(host)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w")
    return client, lifespan


async def test_health_shows_initializing_then_idle_and_jobs_complete() -> None:
    client, lifespan = await _client(StubWorker())
    try:
        first = (await client.get("/health")).json()
        assert first["workers"]["initializing"] == 1
        queued = (await client.post("/run", json={"input": {"x": 1}})).json()
        assert queued["status"] == "IN_QUEUE" and queued["id"]
        for _ in range(100):
            status = (await client.get(f"/status/{queued['id']}")).json()
            if status["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        assert status["output"] == {"echo": {"x": 1}}
        assert "delayTime" in status and "executionTime" in status
        health = (await client.get("/health")).json()
        assert health["workers"]["idle"] == 1 and health["jobs"]["completed"] == 1
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_runsync_failed_job_and_unknown_job() -> None:
    client, lifespan = await _client(StubWorker())
    try:
        ok = (await client.post("/runsync", json={"input": {"y": 2}})).json()
        assert ok["status"] == "COMPLETED" and ok["output"] == {"echo": {"y": 2}}
        failed = (await client.post("/runsync", json={"input": {"fail": True}})).json()
        assert failed["status"] == "FAILED" and failed["error"] == "asked to fail"
        assert (await client.get("/status/nope")).status_code == 404
        assert (await client.post("/run", json={"no": "input"})).status_code == 400
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_concurrent_jobs_run_one_at_a_time_and_cancel_works() -> None:
    client, lifespan = await _client(StubWorker())
    try:
        answers = await asyncio.gather(
            *(client.post("/runsync", json={"input": {"i": i, "sleep": 0.01}}) for i in range(10))
        )
        assert [a.json()["status"] for a in answers] == ["COMPLETED"] * 10
        slow = (await client.post("/run", json={"input": {"sleep": 0.3}})).json()
        queued = (await client.post("/run", json={"input": {"x": "never"}})).json()
        cancelled = (await client.post(f"/cancel/{queued['id']}")).json()
        assert cancelled["status"] == "CANCELLED"
        await asyncio.sleep(0.5)
        assert (await client.get(f"/status/{slow['id']}")).json()["status"] == "COMPLETED"
        assert (await client.get(f"/status/{queued['id']}")).json()["status"] == "CANCELLED"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)

"""The local adapter speaks Runpod's v2 endpoint routes in front of a worker's handler."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from tests.support.waiting import eventually
from visgate.providers.local.adapter import WorkerHost, build_app


class StubWorker:
    """A worker double: jobs that echo, fail, or detect overlap. Its start-up (with
    `hold_startup`) and its `{"hold": true}` jobs wait for the test's go-ahead, so a test
    sees `initializing` or a job in progress for exactly as long as it looks."""

    def __init__(self, *, hold_startup: bool = False) -> None:
        self.started = threading.Event()
        self.may_start = threading.Event()
        self.release_jobs = threading.Event()
        self.busy = threading.Lock()
        if not hold_startup:
            self.may_start.set()

    def startup(self) -> None:
        self.may_start.wait(10)
        self.started.set()

    def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        if not self.busy.acquire(blocking=False):
            raise RuntimeError("entered twice")
        try:
            if job["input"].get("fail"):
                return {"error": "asked to fail"}
            if "error_value" in job["input"]:  # what a handler might put under `error`
                return {"error": job["input"]["error_value"], "partial": 1}
            if job["input"].get("hold"):
                self.release_jobs.wait(10)
            time.sleep(float(job["input"].get("sleep", 0)))
            return {"echo": job["input"]}
        finally:
            self.busy.release()


async def _client(worker: StubWorker, clock=time.time):
    host = WorkerHost(worker.startup, worker.handle, clock=clock)
    app = build_app(host)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w")
    return client, lifespan


async def test_health_shows_initializing_then_idle_and_jobs_complete() -> None:
    worker = StubWorker(hold_startup=True)
    client, lifespan = await _client(worker)
    try:
        first = (await client.get("/health")).json()
        assert first["workers"]["initializing"] == 1
        queued = (await client.post("/run", json={"input": {"x": 1}})).json()
        assert queued["status"] == "IN_QUEUE" and queued["id"]
        worker.may_start.set()
        status = await _finished(client, queued["id"])
        assert status["status"] == "COMPLETED"
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
    worker = StubWorker()
    client, lifespan = await _client(worker)
    try:
        answers = await asyncio.gather(
            *(client.post("/runsync", json={"input": {"i": i, "sleep": 0.01}}) for i in range(10))
        )
        assert [a.json()["status"] for a in answers] == ["COMPLETED"] * 10
        slow = (await client.post("/run", json={"input": {"hold": True}})).json()
        queued = (await client.post("/run", json={"input": {"x": "never"}})).json()
        cancelled = (await client.post(f"/cancel/{queued['id']}")).json()
        assert cancelled["status"] == "CANCELLED"
        worker.release_jobs.set()
        assert (await _finished(client, slow["id"]))["status"] == "COMPLETED"
        assert (await client.get(f"/status/{queued['id']}")).json()["status"] == "CANCELLED"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_only_a_string_error_fails_a_job_like_runpod() -> None:
    client, lifespan = await _client(StubWorker())
    try:
        detail = '{"type": "ValidationError", "message": "text: too long"}'
        failed = (await client.post("/runsync", json={"input": {"error_value": detail}})).json()
        assert failed["status"] == "FAILED" and failed["error"] == detail
        assert "output" not in failed
        again = (await client.get(f"/status/{failed['id']}")).json()
        assert again["status"] == "FAILED" and again["error"] == detail
        # an object (or an empty string) under `error` does not fail a Runpod job either
        for value in ({"type": "ValidationError", "message": "x"}, ""):
            body = {"input": {"error_value": value}}
            done = (await client.post("/runsync", json=body)).json()
            assert done["status"] == "COMPLETED", done
            assert "error" not in done and done["output"]["error"] == value
        health = (await client.get("/health")).json()
        assert health["jobs"]["failed"] == 1 and health["jobs"]["completed"] == 2
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_runsync_wait_that_is_not_a_number_is_a_400_not_a_500() -> None:
    worker = StubWorker()
    client, lifespan = await _client(worker)
    try:
        bad = await client.post("/runsync?wait=abc", json={"input": {"x": 1}})
        assert bad.status_code == 400 and "wait" in bad.json()["error"]
        short = await client.post("/runsync?wait=-5", json={"input": {"hold": True}})
        assert short.status_code == 200 and short.json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
        worker.release_jobs.set()
        ok = await client.post("/runsync?wait=20000", json={"input": {"x": 2}})
        assert ok.json()["status"] == "COMPLETED"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _status_once(client: httpx.AsyncClient, job_id: str, *among: str) -> dict[str, Any]:
    """The job's status once it is one of `among`."""

    async def probe() -> dict[str, Any] | None:
        status = (await client.get(f"/status/{job_id}")).json()
        return status if status["status"] in among else None

    return await eventually(probe, what=f"job {job_id} reaching {'/'.join(among)}")


async def _finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    return await _status_once(client, job_id, "COMPLETED", "FAILED", "CANCELLED")


async def test_finished_jobs_are_forgotten_after_runpods_retention() -> None:
    clock = FakeClock()
    client, lifespan = await _client(StubWorker(), clock=clock)
    try:
        run = (await client.post("/run", json={"input": {"x": 1}})).json()
        assert (await _finished(client, run["id"]))["status"] == "COMPLETED"
        sync = (await client.post("/runsync", json={"input": {"x": 2}})).json()
        queued = (await client.post("/run", json={"input": {"sleep": 0}})).json()
        await _finished(client, queued["id"])
        clock.now += 61  # /runsync results are kept 1 min, /run results 30 min
        assert (await client.get(f"/status/{sync['id']}")).status_code == 404
        assert (await client.get(f"/status/{run['id']}")).json()["status"] == "COMPLETED"
        clock.now += 30 * 60 - 61
        assert (await client.get(f"/status/{run['id']}")).status_code == 200
        clock.now += 2
        assert (await client.get(f"/status/{run['id']}")).status_code == 404
        assert (await client.post(f"/cancel/{queued['id']}")).status_code == 404
        health = (await client.get("/health")).json()
        assert health["jobs"]["completed"] == 3  # the counters are totals, not what is kept
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_a_job_still_running_is_never_pruned() -> None:
    clock = FakeClock()
    worker = StubWorker()
    client, lifespan = await _client(worker, clock=clock)
    try:
        slow = (await client.post("/run", json={"input": {"hold": True}})).json()
        await _status_once(client, slow["id"], "IN_PROGRESS")
        clock.now += 24 * 3600
        status = (await client.get(f"/status/{slow['id']}")).json()
        assert status["status"] == "IN_PROGRESS"
        worker.release_jobs.set()
        assert (await _finished(client, slow["id"]))["status"] == "COMPLETED"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)

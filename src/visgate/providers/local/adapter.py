"""Runpod v2 endpoint routes in front of the worker's own handler, for `PROVIDER=local`.

`python -m visgate.providers.local.adapter --port P` runs in the worker's environment (the
env a Runpod template would give it). It runs the worker's start-up (which calls the
control plane back through the real callback route) and serves `/run`, `/runsync`,
`/status/{job}`, `/cancel/{job}` and `/health` with Runpod's JSON shapes. The runpod SDK's
own `--rp_serve_api` server cannot stand in: it has no `/health` or `/cancel` and answers
`GET /status` with 405.

Like Runpod, a job FAILs only when the handler's output carries a non-empty *string* `error`
(an object there is reported to show as COMPLETED: runpod-python issue #299), and finished
jobs are forgotten after Runpod's retention: 30 min for `/run`, 1 min for `/runsync`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WORKER_MODULE = os.environ.get("VISGATE_WORKER_MODULE", "visgate_worker.local")

RUN_RETENTION_S = 30 * 60  # Runpod keeps /run results 30 min ...
RUNSYNC_RETENTION_S = 60  # ... and /runsync results 1 min
RUNSYNC_DEFAULT_WAIT_MS = 90_000
RUNSYNC_MAX_WAIT_MS = 300_000

Clock = Callable[[], float]


@dataclass
class Job:
    id: str
    input: dict[str, Any]
    submitted: float
    retention_s: float = RUN_RETENTION_S
    status: str = "IN_QUEUE"
    started: float | None = None
    finished: float | None = None
    output: Any = None
    error: Any = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.submitted) * 1000)
        if self.finished is not None and self.started is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.status == "COMPLETED":
            body["output"] = self.output
        if self.status == "FAILED":
            body["error"] = self.error
        return body


def job_outcome(result: Any) -> tuple[str, Any]:
    """(status, error) the way Runpod decides: FAILED only for a non-empty string `error`."""
    if isinstance(result, dict):
        error = result.get("error")
        if isinstance(error, str) and error:
            return "FAILED", error
    return "COMPLETED", None


class WorkerHost:
    """Owns the worker: its start-up state and one job queue served in order. `clock` is
    injectable so retention can be tested without waiting half an hour."""

    def __init__(
        self,
        startup: Callable[[], Any],
        handler: Callable[[dict[str, Any]], Any],
        *,
        clock: Clock = time.time,
    ) -> None:
        self.startup = startup
        self.handler = handler
        self.clock = clock
        self.state = "initializing"
        self.jobs: dict[str, Job] = {}
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.counts = {"completed": 0, "failed": 0, "retried": 0}

    async def boot(self) -> None:
        try:
            await asyncio.to_thread(self.startup)
        except Exception:
            self.state = "unhealthy"
            return
        self.state = "ready"
        while True:
            job = await self.queue.get()
            if job.status == "CANCELLED":
                continue
            job.status, job.started = "IN_PROGRESS", self.clock()
            try:
                result = await asyncio.to_thread(self.handler, {"id": job.id, "input": job.input})
            except Exception as exc:  # the SDK fails the job and keeps the worker
                result = {"error": f"{type(exc).__name__}: {exc}"}
            job.finished = self.clock()
            if job.status != "CANCELLED":
                job.status, job.error = job_outcome(result)
                if job.status == "FAILED":
                    self.counts["failed"] += 1
                else:
                    job.output = result
                    self.counts["completed"] += 1
            job.done.set()

    def submit(self, job_input: dict[str, Any], *, sync: bool = False) -> Job:
        self.prune()
        job = Job(
            id=f"local-{secrets.token_hex(8)}",
            input=job_input,
            submitted=self.clock(),
            retention_s=RUNSYNC_RETENTION_S if sync else RUN_RETENTION_S,
        )
        self.jobs[job.id] = job
        self.queue.put_nowait(job)
        return job

    def get(self, job_id: str) -> Job | None:
        self.prune()
        return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        if job.status in ("IN_QUEUE", "IN_PROGRESS"):
            job.status, job.finished = "CANCELLED", self.clock()
            job.done.set()

    def prune(self) -> None:
        """Forget finished jobs past their retention, as Runpod does (and so memory stays flat)."""
        now = self.clock()
        expired = [
            job_id
            for job_id, job in self.jobs.items()
            if job.finished is not None and now - job.finished > job.retention_s
        ]
        for job_id in expired:
            del self.jobs[job_id]

    def health(self) -> dict[str, Any]:
        self.prune()
        running = sum(1 for j in self.jobs.values() if j.status == "IN_PROGRESS")
        queued = sum(1 for j in self.jobs.values() if j.status == "IN_QUEUE")
        workers = {
            "idle": 0,
            "initializing": 0,
            "ready": 0,
            "running": 0,
            "throttled": 0,
            "unhealthy": 0,
        }
        if self.state == "ready":
            workers["running" if running else "idle"] = 1
        else:
            workers[self.state] = 1
        return {
            "jobs": {**self.counts, "inProgress": running, "inQueue": queued},
            "workers": workers,
        }


def _wait_ms(raw: str | None) -> int | None:
    """`?wait=` in ms, clamped to what Runpod allows; None when it is not a number."""
    if raw is None:
        return RUNSYNC_DEFAULT_WAIT_MS
    try:
        wait = int(raw)
    except ValueError:
        return None
    return max(0, min(wait, RUNSYNC_MAX_WAIT_MS))


def build_app(host: WorkerHost) -> Starlette:
    async def read_input(request: Request) -> dict[str, Any] | JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return JSONResponse({"error": "'input' (an object) is required"}, status_code=400)
        return body["input"]  # type: ignore[no-any-return]

    async def run(request: Request) -> JSONResponse:
        job_input = await read_input(request)
        if isinstance(job_input, JSONResponse):
            return job_input
        job = host.submit(job_input)
        return JSONResponse({"id": job.id, "status": job.status})

    async def runsync(request: Request) -> JSONResponse:
        job_input = await read_input(request)
        if isinstance(job_input, JSONResponse):
            return job_input
        wait_ms = _wait_ms(request.query_params.get("wait"))
        if wait_ms is None:
            return JSONResponse(
                {"error": "wait must be a whole number of milliseconds"}, status_code=400
            )
        job = host.submit(job_input, sync=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), timeout=wait_ms / 1000)
        return JSONResponse(job.view())

    async def status(request: Request) -> JSONResponse:
        job = host.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "job not found"}, status_code=404)
        return JSONResponse(job.view())

    async def cancel(request: Request) -> JSONResponse:
        job = host.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "job not found"}, status_code=404)
        host.cancel(job)
        return JSONResponse({"id": job.id, "status": job.status})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(host.health())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(host.boot())
        yield
        task.cancel()

    return Starlette(
        routes=[
            Route("/run", run, methods=["POST"]),
            Route("/runsync", runsync, methods=["POST"]),
            Route("/status/{job_id}", status, methods=["GET", "POST"]),
            Route("/cancel/{job_id}", cancel, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    module = importlib.import_module(WORKER_MODULE)
    host = WorkerHost(module.startup, module.handle_job)
    uvicorn.run(build_app(host), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

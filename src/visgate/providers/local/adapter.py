"""Runpod v2 endpoint routes in front of the worker's own handler, for `PROVIDER=local`.

`python -m visgate.providers.local.adapter --port P` runs in the worker's environment (the
env a Runpod template would give it). It runs the worker's start-up (which calls the
control plane back through the real callback route) and serves `/run`, `/runsync`,
`/status/{job}`, `/cancel/{job}` and `/health` with Runpod's JSON shapes. The runpod SDK's
own `--rp_serve_api` server cannot stand in: it has no `/health` or `/cancel` and answers
`GET /status` with 405.
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


@dataclass
class Job:
    id: str
    input: dict[str, Any]
    submitted: float
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


class WorkerHost:
    """Owns the worker: its start-up state and one job queue served in order."""

    def __init__(
        self, startup: Callable[[], Any], handler: Callable[[dict[str, Any]], Any]
    ) -> None:
        self.startup = startup
        self.handler = handler
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
            job.status, job.started = "IN_PROGRESS", time.time()
            try:
                result = await asyncio.to_thread(self.handler, {"id": job.id, "input": job.input})
            except Exception as exc:  # the SDK fails the job and keeps the worker
                result = {"error": f"{type(exc).__name__}: {exc}"}
            job.finished = time.time()
            if job.status != "CANCELLED":
                if isinstance(result, dict) and "error" in result:
                    job.status, job.error = "FAILED", result["error"]
                    self.counts["failed"] += 1
                else:
                    job.status, job.output = "COMPLETED", result
                    self.counts["completed"] += 1
            job.done.set()

    def submit(self, job_input: dict[str, Any]) -> Job:
        job = Job(id=f"local-{secrets.token_hex(8)}", input=job_input, submitted=time.time())
        self.jobs[job.id] = job
        self.queue.put_nowait(job)
        return job

    def health(self) -> dict[str, Any]:
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
        job = host.submit(job_input)
        wait_ms = min(int(request.query_params.get("wait", "90000")), 300_000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), timeout=wait_ms / 1000)
        return JSONResponse(job.view())

    async def status(request: Request) -> JSONResponse:
        job = host.jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "job not found"}, status_code=404)
        return JSONResponse(job.view())

    async def cancel(request: Request) -> JSONResponse:
        job = host.jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "job not found"}, status_code=404)
        if job.status in ("IN_QUEUE", "IN_PROGRESS"):
            job.status = "CANCELLED"
            job.done.set()
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

"""A Runpod that speaks its real wire protocols on 127.0.0.1: GraphQL over HTTP (executed by
graphql-core against `runpod_schema.graphql`, so a misspelled field fails as on Runpod, at
HTTP 200 with `errors`), the REST API v2 under `/rest/v2/...` (`rest_url`; every request and
answer validated against Runpod's OpenAPI document: runpod_rest.py, runpod_contract.py) and
the serverless endpoint API under `/v2/{endpoint_id}/...`. GraphQL and REST share one
account: both see the same templates and endpoints, by id and by name.

It behaves like Runpod where our code could get it wrong: template names are unique;
`saveEndpoint` with an id REPLACES every field (omitted ones reset to defaults); an endpoint
must have 0 workers before `deleteEndpoint`; `deleteTemplate` fails while an endpoint uses
the template (and, with `template_release_lag`, a few times after); `saveTemplate` without
`dockerArgs` answers "Something went wrong"; the account caps the sum of `workersMax`; a
key is taken only from `Authorization: Bearer` (`?api_key=` in the URL is a 400).

Knobs on `.state` (thread-safe; the server runs on its own thread): `api_keys`,
`worker_quota`, `pools_without_capacity` (workers stay `throttled`, jobs stay IN_QUEUE),
`latency_s`, `fail_next(n, status, retry_after=, surface=, field=)` (429/5xx bursts),
`hold(field, commit_first=)` (calls wait at the fake until released: a stalled answer),
`refuse_next(message, n, field=)` (a GraphQL error at HTTP 200, e.g. "try again later";
on REST a 400 problem), `lose_answer_next(field, n)` (runs the mutation, then answers 502);
a fault's `field` is a GraphQL root field or a REST operationId ("createEndpoint"), its
`surface` "graphql", "rest", "serverless" or "any" (runpod_knobs.py); `set_workers(...)`,
REST only: `gpu_availability` (pool -> NONE|LOW|MEDIUM|HIGH), `worker_log_lines` (endpoint
id -> lines of its workers' log stream), `billed` (endpoint id or name -> USD billed, read
by `GET /v2/billing/serverless`; kept after a delete); `contract_violations` (answers that
broke the OpenAPI document: each also a 500),
`job_handler` (sync or async; default echoes the input), `on_endpoint_created` (sync or
async, called with the endpoint's view when a worker would start: at creation with
`workersMin >= 1`, else on the first queued job, as on Runpod). Reads: `calls` (each with `path`: path and query
as sent), `calls_of(field)` (a REST call's operation and field are its operationId),
`creations(kind)`, `endpoint(name_or_id)`, `template(...)`, `endpoint_env(...)`.

Use `run_fake_runpod()` for a loopback server, or `FakeRunpod().app` with
`httpx.ASGITransport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute_sync,
    graphql_sync,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from tests.fakes.runpod_knobs import Fault
from tests.fakes.runpod_rest import build_rest_app
from tests.fakes.runpod_state import (
    API_KEY,
    QUOTA_MESSAGE,
    SCHEMA,
    Call,
    FakeJob,
    FakeRunpodState,
    Resolvers,
    new_id,
)
from tests.support.servers import serve_in_thread

__all__ = [
    "API_KEY",
    "QUOTA_MESSAGE",
    "FakeRunpod",
    "FakeRunpodState",
    "RunningFakeRunpod",
    "build_app",
    "run_fake_runpod",
]

_ROUTES = {
    ("health", False): "GET",
    ("run", False): "POST",
    ("runsync", False): "POST",
    ("status", True): "GET",
    ("cancel", True): "POST",
}


@functools.lru_cache(maxsize=256)
def _valid_document(query: str) -> DocumentNode | None:
    """Parse and validate a query once: clients send the same few documents all the time."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    return None if validate(SCHEMA, document) else document


@functools.lru_cache(maxsize=256)
def _operation(query: str, operation_name: str | None) -> tuple[str | None, tuple[str, ...]]:
    try:
        document = parse(query)
    except GraphQLError:
        return None, ()
    for node in document.definitions:
        if isinstance(node, OperationDefinitionNode) and (
            operation_name is None or (node.name and node.name.value == operation_name)
        ):
            fields = tuple(
                s.name.value for s in node.selection_set.selections if hasattr(s, "name")
            )
            return (node.name.value if node.name else None), fields
    return None, ()


def _fault_response(fault: Fault) -> Response:
    if fault.message is not None:
        return JSONResponse({"data": None, "errors": [{"message": fault.message}]})
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    body = "Too Many Requests" if fault.status == 429 else "upstream error"
    return Response(body, status_code=fault.status, headers=headers, media_type="text/plain")


def _key(request: Request) -> str:
    value = request.headers.get("authorization", "")
    return value.removeprefix("Bearer ").strip()


def _target(request: Request) -> str:
    """Path and query as sent, so tests can see anything a client put in the URL."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def _key_in_url(request: Request) -> Response | None:
    """A strict server: a key in the URL (`?api_key=`, as Runpod's examples do) is refused,
    since URLs end up in access logs."""
    if "api_key" in request.query_params:
        return JSONResponse({"errors": [{"message": "api_key in the URL is refused"}]}, 400)
    return None


def build_app(state: FakeRunpodState) -> Starlette:
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def call_hook(view: dict[str, Any]) -> None:
        hook = state.on_endpoint_created
        if hook is None:
            return
        result = (
            await asyncio.to_thread(hook, view)
            if not inspect.iscoroutinefunction(hook)
            else hook(view)
        )
        if inspect.isawaitable(result):
            await result

    async def graphql_route(request: Request) -> Response:
        await asyncio.sleep(state.latency_s)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"errors": [{"message": "Body is not a JSON object"}]}, 400)
        query, variables = str(body.get("query") or ""), body.get("variables") or {}
        operation, fields = _operation(query, body.get("operationName"))
        auth = request.headers.get("authorization")
        state.record(Call("graphql", _target(request), operation, fields, variables, auth))
        if (refused := _key_in_url(request)) is not None:
            return refused
        if _key(request) not in state.api_keys:
            return JSONResponse({"errors": [{"message": "Unauthorized"}]}, status_code=401)
        if fault := state.take_fault("graphql", fields, after=False):
            return _fault_response(fault)
        hold = state.catch_hold("graphql", fields, _target(request), variables)
        if hold is not None and not hold.commit_first:
            await hold.wait()
        created: list[dict[str, Any]] = []
        with state.lock:
            document = _valid_document(query)
            if document is None:  # let graphql-core word the error exactly
                result = graphql_sync(SCHEMA, query, variable_values=variables)
            else:
                result = execute_sync(
                    SCHEMA,
                    document,
                    root_value=Resolvers(state, created),
                    variable_values=variables,
                    operation_name=body.get("operationName"),
                )
        for view in created:
            spawn(call_hook(view))
        if hold is not None and hold.commit_first:
            await hold.wait()
        if fault := state.take_fault("graphql", fields, after=True):
            return _fault_response(fault)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
            if result.data is None:
                del answer["data"]
        return JSONResponse(answer)

    async def run_job(job: FakeJob) -> None:
        while not state.has_capacity(job.endpoint_id):  # no GPU: the job waits in the queue
            if job.status != "IN_QUEUE" or job.endpoint_id not in state.endpoints:
                return
            await asyncio.sleep(0.02)
        with state.lock:
            if job.status != "IN_QUEUE":
                return
            job.status, job.started = "IN_PROGRESS", time.time()
        try:
            handler = state.job_handler
            result = (
                handler(job.input)
                if inspect.iscoroutinefunction(handler)
                else await asyncio.to_thread(handler, job.input)
            )
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        with state.lock:
            job.finished = time.time()
            if job.status == "IN_PROGRESS":
                failed = isinstance(result, dict) and "error" in result
                job.status = "FAILED" if failed else "COMPLETED"
                job.error, job.output = (result["error"], None) if failed else (None, result)
        job.done.set()

    async def serverless_route(request: Request) -> Response:
        await asyncio.sleep(state.latency_s)
        endpoint_id, action = request.path_params["endpoint_id"], request.path_params["action"]
        job_id = request.path_params.get("job_id")
        auth = request.headers.get("authorization")
        state.record(Call("serverless", _target(request), authorization=auth))
        if (refused := _key_in_url(request)) is not None:
            return refused
        if _key(request) not in state.api_keys:
            return Response("Unauthorized", status_code=401)
        if fault := state.take_fault("serverless", (), after=False):
            return _fault_response(fault)
        if _ROUTES.get((action, job_id is not None)) != request.method:
            return JSONResponse({"error": "not found"}, status_code=404)
        hold = state.catch_hold("serverless", (action,), _target(request), {})
        if hold is not None and not hold.commit_first:
            await hold.wait()
        if endpoint_id not in state.endpoints:
            return JSONResponse({"error": "endpoint not found"}, status_code=404)
        if action == "health":
            return JSONResponse(state.health(endpoint_id))
        if action in ("run", "runsync"):
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or "input" not in body:
                return JSONResponse({"error": "input is required"}, status_code=400)
            job = FakeJob(f"{new_id(8)}-{new_id(4)}-u1", endpoint_id, body["input"])
            with state.lock:
                state.jobs[job.id] = job
            spawn(run_job(job))
            if hold is not None and hold.commit_first:
                await hold.wait()
            if action == "run":
                return JSONResponse({"id": job.id, "status": job.status})
            wait_s = int(request.query_params.get("wait", "90000")) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), timeout=wait_s)
            return JSONResponse(job.view())
        job = state.jobs.get(job_id or "")
        if job is None or job.endpoint_id != endpoint_id:
            return JSONResponse({"error": "job not found"}, status_code=404)
        if action == "cancel" and job.status in ("IN_QUEUE", "IN_PROGRESS"):
            with state.lock:
                job.status = "CANCELLED"
            job.done.set()
        return JSONResponse(job.view())

    return Starlette(
        routes=[
            Route("/graphql", graphql_route, methods=["POST"]),
            Route("/v2/{endpoint_id}/{action:str}", serverless_route, methods=["GET", "POST"]),
            Route(
                "/v2/{endpoint_id}/{action:str}/{job_id}", serverless_route, methods=["GET", "POST"]
            ),
            Mount("/rest", app=build_rest_app(state)),
        ]
    )


class FakeRunpod:
    def __init__(self, state: FakeRunpodState | None = None) -> None:
        self.state = state or FakeRunpodState()
        self.app = build_app(self.state)


@dataclass(frozen=True)
class RunningFakeRunpod:
    url: str
    state: FakeRunpodState
    app: Starlette

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def api_base(self) -> str:
        return f"{self.url}/v2"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API v2 (tests/fakes/runpod_rest.py)."""
        return f"{self.url}/rest/v2"


@contextlib.contextmanager
def run_fake_runpod(state: FakeRunpodState | None = None) -> Iterator[RunningFakeRunpod]:
    """Serve a fake Runpod on 127.0.0.1 (a free port) from a background thread."""
    fake = FakeRunpod(state)
    with serve_in_thread(fake.app) as url:
        yield RunningFakeRunpod(url, fake.state, fake.app)

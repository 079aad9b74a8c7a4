"""Runpod's REST API v2 on the fake Runpod, mounted by build_app (runpod.py) under `/rest`,
so its base URL is `{fake_url}/rest/v2` (on Runpod api.runpod.io, apart from the job API's
api.runpod.ai; the prefix keeps the two `/v2` trees apart on one server).

Every request is matched against Runpod's OpenAPI document (runpod_contract.py): the key is
taken from `Authorization: Bearer` only (`?api_key=` is a 400, a wrong key a 401), the call
is recorded (surface "rest", operation = operationId, variables = the JSON body), faults
aimed at the operation are served, then `check_request` turns any problem into a 422
problem+json `{title, status, detail, errors}`. Every answer then goes through
`check_response`: a violation means the fake drifted from Runpod, so it is appended to
`state.contract_violations` and the answer becomes a 500 carrying it.

Served: templates (create, list, get, delete), serverless endpoints (create, list, get,
PATCH, delete, workers, a worker's logs as Server-Sent Events), the GPU catalogue and the
serverless and public-endpoint billing history (the `billed` knob); any other documented
operation is a 501, an undocumented path a 404, a documented path with
an undocumented method a 405.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import runpod_contract as contract
from tests.fakes import runpod_rest_ops as ops
from tests.fakes.runpod_knobs import Fault
from tests.fakes.runpod_rest_ops import CATALOG, DATA_CENTER, WORKER_STATUS, Problem
from tests.fakes.runpod_state import Call, FakeRunpodState

PROBLEM = "application/problem+json"
POLICY = '"minute";q=600;w=60, "hour";q=30000;w=3600, "day";q=500000;w=86400'
Answer = tuple[int, Any]  # status and JSON body (None: no body)


def _rate_headers(wait: int | None = None) -> dict[str, str]:
    minute = f'"minute";r={0 if wait is not None else 599};t={wait if wait is not None else 60}'
    return {
        "RateLimit": f'{minute}, "hour";r=29999;t=3600, "day";r=499999;t=86400',
        "RateLimit-Policy": POLICY,
    }


def _workers(s: FakeRunpodState, row: dict[str, Any]) -> list[dict[str, Any]]:
    """One worker per count in the job API's health (the fake's one source of truth)."""
    counts = s.health(row["id"])["workers"]
    view = ops.endpoint_v2(s, row, "")
    pool = row["gpuIds"].split(",")[0]
    gpu = next((c[0] for c in CATALOG if c[3] == pool), None)
    found: list[dict[str, Any]] = []
    for state, status in WORKER_STATUS.items():
        for _ in range(counts.get(state, 0)):
            placed = status not in ("THROTTLED", "INITIALIZING")
            found.append(
                {
                    "id": f"{row['id']}-w{len(found) + 1}",
                    "status": status,
                    "isStale": False,
                    "version": 1,
                    "gpuCount": row["gpuCount"],
                    "image": view["image"],
                    "uptimeSeconds": 60 if placed else None,
                    "gpuTypeId": gpu if placed else None,
                    "dataCenterId": DATA_CENTER[0] if placed else None,
                    "startedAt": row["createdAt"] if placed else None,
                }
            )
    return found


def _worker_list(s: FakeRunpodState, endpoint_id: str) -> dict[str, Any]:
    workers = _workers(s, ops.get_endpoint(s, endpoint_id))
    summary = {k: 0 for k in ("running", "idle", "initializing", "throttled", "unhealthy")}
    for worker in workers:
        summary[worker["status"].lower()] += 1
    return {"endpointVersion": 1, "summary": {**summary, "total": len(workers)}, "workers": workers}


def _log_stream(s: FakeRunpodState, endpoint_id: str, worker_id: str, q: dict, since: str) -> str:
    """The backfill of `worker_log_lines[endpoint_id]` as SSE, then the stream ends (Runpod
    keeps it open for live lines; the fake has none). Event ids are the events' `ts`."""
    row = ops.get_endpoint(s, endpoint_id)
    if worker_id not in {w["id"] for w in _workers(s, row)}:
        raise Problem(404, "worker not found")
    base = row["createdAt"].removesuffix("Z")
    lines = s.worker_log_lines.get(endpoint_id, [])
    events = [(f"{base}.{i + 1:03d}Z", line) for i, line in enumerate(lines[:999])]
    if q.get("source", "container") != "container":
        events = []
    if since:
        events = [e for e in events if e[0] > since]
    else:
        tail = int(q.get("tail", "100"))
        events = events[len(events) - tail :] if tail else []
    out = []
    for ts, line in events:
        data = json.dumps({"ts": ts, "source": "container", "line": line})
        out.append(f"id: {ts}\ndata: {data}\n\n")
    return "".join(out)


def _gpu_catalog(s: FakeRunpodState, q: dict[str, str], query: list[tuple[str, str]]) -> dict:
    """`include=AVAILABILITY` needs `product` and the other filters need `include` (400 either
    way, as documented); availability is the pool's `gpu_availability` for SERVERLESS."""
    include = "include" in q
    if include != ("product" in q):
        raise Problem(400, "include=AVAILABILITY and product go together")
    scoped = {"count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion"} & set(q)
    if scoped and not include:
        raise Problem(400, f"{sorted(scoped)[0]} is valid only with include=AVAILABILITY")
    if {"cudaVersions", "minCudaVersion"} <= set(q):
        raise Problem(400, "cudaVersions and minCudaVersion are mutually exclusive")
    products = {p for k, v in query if k == "product" for p in v.split(",")}
    gpus = []
    for gpu_id, name, memory, pool, price in CATALOG:
        gpu: dict[str, Any] = {
            "id": gpu_id,
            "name": name,
            "pool": pool,
            "manufacturer": "NVIDIA",
            "memory": memory,
            "secure": True,
            "community": pool is not None,
            "price": {"secure": round(price * 0.6 + 0.2, 2), "community": round(price * 0.4, 2)},
            "maxCount": {"secure": 8, "community": 4},
        }
        if pool is not None:
            gpu["price"]["serverless"] = price
        if include:
            level = s.availability(pool) if "SERVERLESS" in products else "HIGH"
            gpu["availability"] = level
            if level != "NONE":
                dc = {"id": DATA_CENTER[0], "name": DATA_CENTER[1], "availability": level}
                gpu["dataCenters"] = [dc]
            gpu["cudaVersions"] = [{"version": "12.8", "available": level != "NONE"}]
        gpus.append(gpu)
    return {"gpus": gpus}


BILLING_SPLIT = {"gpuAmount": 0.85, "cpuAmount": 0.0, "diskAmount": 0.05, "feeAmount": 0.10}


def _bucket_start(at: datetime, size: str) -> datetime:
    """The start of the `size` bucket `at` falls in (weeks start on Monday)."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    match size:
        case "hour":
            return at.replace(minute=0, second=0, microsecond=0)
        case "week":
            return day - timedelta(days=day.weekday())
        case "month":
            return day.replace(day=1)
        case "year":
            return day.replace(month=1, day=1)
    return day


def _bucket_step(start: datetime, size: str, n: int = 1) -> datetime:
    """`start` moved `n` buckets on (back where n < 0)."""
    if size in ("hour", "day", "week"):
        return start + n * timedelta(**{f"{size}s": 1})
    months = start.year * 12 + start.month - 1 + n * (12 if size == "year" else 1)
    return start.replace(year=months // 12, month=months % 12 + 1)


def _instant(text: str, name: str) -> datetime:
    """An RFC 3339 date-time (with its offset) in UTC, else a 400 as on Runpod."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise Problem(400, f"{name} must be an RFC 3339 date-time: {text!r}")
    return at.astimezone(UTC)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(q: dict[str, str], size: str, now: datetime) -> tuple[datetime, datetime]:
    """The resolved [start, end) as documented: `lastN` buckets ending with the current one,
    else `startTime` (default 30 days ago) snapped down and `endTime` (default now) up."""
    current = _bucket_start(now, size)
    if "lastN" in q:
        if int(q["lastN"]) > 10_000:
            raise Problem(400, "lastN reaches too far back")
        return _bucket_step(current, size, 1 - int(q["lastN"])), _bucket_step(current, size)
    given = {k: _instant(q[k], k) for k in ("startTime", "endTime") if k in q}
    start = _bucket_start(given.get("startTime", now - timedelta(days=30)), size)
    end = given.get("endTime", now)
    end_bucket = _bucket_start(end, size)
    return start, end_bucket if end_bucket == end else _bucket_step(end_bucket, size)


def _billing(s: FakeRunpodState, q: dict[str, str], per_endpoint: bool) -> dict[str, Any]:
    """`billed` (endpoint id or name -> USD) as one record per endpoint in the current
    bucket, when the resolved window holds it; public endpoints (`per_endpoint` False) bill
    nothing. A name resolves to the id of the endpoint created under it, deleted or not."""
    if "lastN" in q and ({"startTime", "endTime"} & set(q)):
        raise Problem(400, "lastN is mutually exclusive with startTime/endTime")
    size, now = q.get("bucketSize", "day"), datetime.now(UTC)
    start, end = _window(q, size, now)
    bucket = _bucket_start(now, size)
    ids = {name: rid for kind, rid, name in s._created if kind == "endpoint"}
    billed = s.billed if per_endpoint and start <= bucket < end else {}
    spent: dict[str, float] = {}
    for key, amount in billed.items():
        endpoint_id = ids.get(key, key)
        if q.get("serverlessId") in (None, endpoint_id):
            spent[endpoint_id] = spent.get(endpoint_id, 0.0) + float(amount)
    span = {"startTime": _stamp(bucket), "endTime": _stamp(_bucket_step(bucket, size))}
    records = [
        {**span, "serverlessId": rid, "totalAmount": round(usd, 6)}
        | {k: round(usd * share, 6) for k, share in BILLING_SPLIT.items()}
        for rid, usd in spent.items()
    ]
    query = {"startTime": _stamp(start), "endTime": _stamp(end), "bucketSize": size}
    totals = {k: round(sum(r[k] for r in records), 6) for k in ("totalAmount", *BILLING_SPLIT)}
    if not per_endpoint:
        meta = {"query": query, "recordCount": 0, "totals": {"totalAmount": 0.0}}
        return {"records": [], "metadata": meta}
    if "serverlessId" in q:
        query["serverlessId"] = q["serverlessId"]
    meta = {"query": query, "recordCount": len(records), "totals": totals}
    return {"records": records, "metadata": {**meta, "uniqueServerlessCount": len(spent)}}


def _handle(s: FakeRunpodState, op_id: str, p: dict, q: dict, query: list, body: Any, base: str):
    """Run one operation under the state's lock: (status, JSON body or SSE text or None)."""
    match op_id:
        case "createTemplate":
            return 201, ops.create_template(s, body)
        case "listTemplates":
            return 200, {"templates": [ops.template_v2(t) for t in s.templates.values()]}
        case "getTemplate":
            return 200, ops.template_v2(ops.get_template(s, p["id"]))
        case "deleteTemplate":
            return 204, ops.delete_template(s, p["id"])
        case "createEndpoint":
            return 201, ops.endpoint_v2(s, ops.create_endpoint(s, body), base)
        case "listEndpoints":
            return 200, {"endpoints": [ops.endpoint_v2(s, e, base) for e in s.endpoints.values()]}
        case "getEndpoint":
            return 200, ops.endpoint_v2(s, ops.get_endpoint(s, p["id"]), base)
        case "updateEndpoint":
            return 200, ops.endpoint_v2(s, ops.update_endpoint(s, p["id"], body), base)
        case "deleteEndpoint":
            return 204, ops.delete_endpoint(s, p["id"])
        case "listEndpointWorkers":
            return 200, _worker_list(s, p["id"])
        case "getWorkerLogs":
            return 200, _log_stream(s, p["id"], p["workerId"], q, q.get("since", ""))
        case "listGpuTypes":
            return 200, _gpu_catalog(s, q, query)
        case "listServerlessBilling":
            return 200, _billing(s, q, per_endpoint=True)
        case "listEndpointBilling":
            return 200, _billing(s, q, per_endpoint=False)
    raise Problem(501, f"{op_id} is not served by the fake Runpod")


def _problem(status: int, detail: str, errors: list[str] | None = None) -> Answer:
    return status, Problem(status, detail, errors).body()


def build_rest_app(state: FakeRunpodState) -> Starlette:
    def respond(op: contract.Operation | None, answer: Answer, headers: dict[str, str]) -> Response:
        status, body = answer
        sse = op is not None and op.operation_id == "getWorkerLogs" and status == 200
        kind = "text/event-stream" if sse else "application/json" if status < 400 else PROBLEM
        if op is not None:
            problems = contract.check_response(op, status, None if body is None else kind, body)
            if problems:
                with state.lock:
                    state.contract_violations.extend(problems)
                status, body = _problem(500, "; ".join(problems))
                kind, sse = PROBLEM, False
        if sse:
            extra = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
            return Response(body, 200, {**headers, **extra, "X-Accel-Buffering": "no"}, kind)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status, headers, media_type=kind)

    def fault_answer(fault: Fault) -> tuple[Answer, dict[str, str]]:
        if fault.message is not None:
            return _problem(400, fault.message), _rate_headers()
        if fault.status != 429:
            return _problem(fault.status, "upstream error"), _rate_headers()
        given = fault.retry_after
        wait = math.ceil(float(given)) if given and given.replace(".", "", 1).isdigit() else 60
        headers = {**_rate_headers(wait), **({"Retry-After": given} if given else {})}
        return _problem(429, "rate limit exceeded for the minute window"), headers

    async def dispatch(request: Request) -> Response:
        await asyncio.sleep(state.latency_s)
        path = "/" + request.path_params["path"]
        op = contract.match(request.method, path)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError
        query = list(request.query_params.multi_items())
        target = f"{path}?{request.url.query}" if request.url.query else path
        name = op.operation_id if op else None
        variables = body if isinstance(body, dict) else {}
        auth = request.headers.get("authorization")
        state.record(Call("rest", target, name, (name,) if name else (), variables, auth))
        if "api_key" in request.query_params:
            return respond(op, _problem(400, "api_key in the URL is refused"), {})
        scheme, _, key = (auth or "").partition(" ")
        if scheme != "Bearer" or key.strip() not in state.api_keys:
            return respond(op, _problem(401, "missing or invalid bearer token"), {})
        headers = _rate_headers()
        if op is None:
            if contract.path_is_documented(path):
                allow = [o.method for o in contract.operations() if contract.match(o.method, path)]
                headers["Allow"] = ", ".join(sorted(set(allow)))
                return respond(None, _problem(405, "method not allowed"), headers)
            return respond(None, _problem(404, "resource not found"), headers)
        if fault := state.take_fault("rest", (op.operation_id,), after=False):
            return respond(op, *fault_answer(fault))
        if body is ValueError:
            return respond(op, _problem(400, "request body is not valid JSON"), headers)
        params = contract.path_params(op, path)
        problems = contract.check_request(op, params, query, body)
        if problems:
            return respond(op, _problem(422, "Request validation failed.", problems), headers)
        base = f"{request.url.scheme}://{request.url.netloc}"
        hold = state.catch_hold("rest", (op.operation_id,), target, variables)
        if hold is not None and not hold.commit_first:
            await hold.wait()
        try:
            with state.lock:
                q = dict(query)
                answer = _handle(state, op.operation_id, params, q, query, body, base)
        except Problem as problem:
            answer = problem.status, problem.body()
        if hold is not None and hold.commit_first:
            await hold.wait()
        if answer[0] < 300 and (fault := state.take_fault("rest", (name or "",), after=True)):
            return respond(op, _problem(fault.status, "bad gateway"), headers)
        return respond(op, answer, headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)])

"""State and GraphQL resolvers of the fake Runpod (served by tests/fakes/runpod.py).

Everything lives in memory under one lock: the server runs on its own thread and tests
read and set knobs from theirs.

Workers start as on Runpod: a flex endpoint (`workersMin` 0) runs no container until a job
is queued on it, so `on_endpoint_created` (the worker's start-up) fires at creation only
for `workersMin >= 1`, else at the first accepted `/run` or `/runsync`; once per endpoint.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    build_schema,
)

from tests.fakes.runpod_knobs import FaultKnobs

SCHEMA = build_schema(Path(__file__).with_name("runpod_schema.graphql").read_text())
API_KEY = "rp_fake_4f1c2b9e8d7a6c5b"
POOLS = {
    "AMPERE_16",
    "AMPERE_24",
    "ADA_24",
    "ADA_32_PRO",
    "AMPERE_48",
    "ADA_48_PRO",
    "AMPERE_80",
    "ADA_80_PRO",
    "BLACKWELL_96",
    "HOPPER_141",
    "BLACKWELL_180",
}
GPU_TYPES = [
    {"id": "NVIDIA RTX A4000", "displayName": "RTX A4000", "memoryInGb": 16},
    {"id": "NVIDIA L4", "displayName": "L4", "memoryInGb": 24},
    {"id": "NVIDIA GeForce RTX 4090", "displayName": "RTX 4090", "memoryInGb": 24},
    {"id": "NVIDIA L40S", "displayName": "L40S", "memoryInGb": 48},
    {"id": "NVIDIA A100 80GB PCIe", "displayName": "A100 PCIe", "memoryInGb": 80},
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM", "memoryInGb": 80},
]
QUOTA_MESSAGE = (
    "Your worker concurrency cannot go beyond the maximum limit of ({quota}). "
    "Please contact support if you wish to scale past this number."
)
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "gpuCount": 1,
    "idleTimeout": 5,
    "locations": None,
    "networkVolumeId": None,
    "scalerType": "QUEUE_DELAY",
    "scalerValue": 4,
    "workersMin": 0,
    "workersMax": 3,
    "flashBootType": "OFF",
    "executionTimeoutMs": 600_000,
    "type": "QB",
}
WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")


def new_id(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


@dataclass(frozen=True)
class Call:
    surface: str  # "graphql" or "serverless"
    path: str
    operation: str | None = None  # GraphQL operation name as sent
    fields: tuple[str, ...] = ()  # GraphQL root fields, e.g. ("saveEndpoint",)
    variables: dict[str, Any] = field(default_factory=dict)
    authorization: str | None = None


@dataclass
class FakeJob:
    id: str
    endpoint_id: str
    input: Any
    status: str = "IN_QUEUE"
    output: Any = None
    error: Any = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.submitted) * 1000)
        if self.started is not None and self.finished is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.status == "COMPLETED":
            body["output"] = self.output
        if self.status == "FAILED":
            body["error"] = self.error
        return body


class FakeRunpodState(FaultKnobs):
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._init_knobs()
        self.api_keys: set[str] = {API_KEY}
        self.worker_quota = 5
        self.pools_without_capacity: set[str] = set()
        self.latency_s = 0.0
        self.template_release_lag = 0
        self.job_handler: Callable[[Any], Any] = lambda job_input: job_input
        self.on_endpoint_created: Callable[[dict[str, Any]], Any] | None = None
        self.templates: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, FakeJob] = {}
        self._calls: list[Call] = []
        self._created: list[tuple[str, str, str]] = []
        self._workers: dict[str, dict[str, int]] = {}
        self._release_lag: dict[str, int] = {}
        self._worker_started: set[str] = set()  # endpoints whose worker start-up ran
        self._hook_tasks: set[asyncio.Task[Any]] = set()

    def reset(self) -> None:
        """Back to a fresh account with default knobs (one server, many tests)."""
        with self.lock:
            lock = self.lock
            self.__init__()  # type: ignore[misc]
            self.lock = lock

    # --- knobs -----------------------------------------------------------------------

    def set_workers(self, name_or_id: str, **counts: int) -> None:
        with self.lock:
            self._workers[self._endpoint_row(name_or_id)["id"]] = counts

    # --- reads -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self.lock:
            return list(self._calls)

    def calls_of(self, name: str) -> list[Call]:
        """GraphQL calls by operation name ("SaveEndpoint") or root field ("saveEndpoint")."""
        return [c for c in self.calls if name == c.operation or name in c.fields]

    def creations(self, kind: str) -> list[str]:
        """Ids of every "endpoint" or "template" ever created, in order."""
        with self.lock:
            return [i for k, i, _ in self._created if k == kind]

    def created_names(self, kind: str) -> list[str]:
        """Names of every "endpoint" or "template" ever created, in order (with repeats)."""
        with self.lock:
            return [name for k, _, name in self._created if k == kind]

    def endpoint(self, name_or_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._find(self.endpoints, name_or_id)
            return self._endpoint_view(row) if row else None

    def template(self, name_or_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._find(self.templates, name_or_id)
            return dict(row) if row else None

    def endpoint_env(self, name_or_id: str) -> dict[str, str]:
        """The env a worker of this endpoint would get (from its template)."""
        with self.lock:
            view = self._endpoint_view(self._endpoint_row(name_or_id))
            return {e["key"]: e["value"] for e in view["env"]}

    # --- internals -------------------------------------------------------------------

    @staticmethod
    def _find(rows: dict[str, dict[str, Any]], name_or_id: str) -> dict[str, Any] | None:
        return rows.get(name_or_id) or next(
            (r for r in rows.values() if r["name"] == name_or_id), None
        )

    def _endpoint_row(self, name_or_id: str) -> dict[str, Any]:
        row = self._find(self.endpoints, name_or_id)
        if row is None:
            raise KeyError(f"no endpoint {name_or_id!r}")
        return row

    def _endpoint_view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A REST-created endpoint carries `snapshot`: its template's container settings as
        they were at create (later template edits do not reach it)."""
        template = self.templates.get(row["templateId"])
        if template is not None and "snapshot" in row:
            template = {**template, **row["snapshot"]}
        return {
            **row,
            "template": dict(template) if template else None,
            "env": list(template["env"]) if template else [],
        }

    def has_capacity(self, endpoint_id: str) -> bool:
        with self.lock:
            row = self.endpoints.get(endpoint_id)
            pools = set((row or {}).get("gpuIds", "").split(","))
            return row is not None and bool(pools - self.pools_without_capacity)

    def record(self, call: Call) -> None:
        with self.lock:
            self._calls.append(call)
            self._start_worker_for_job(call)

    def worker_started(self, name_or_id: str) -> bool:
        """Whether this endpoint's worker start-up (the hook) has run."""
        with self.lock:
            return self._endpoint_row(name_or_id)["id"] in self._worker_started

    def _start_worker_for_job(self, call: Call) -> None:
        """A job queued on an endpoint with no worker yet makes Runpod start one."""
        path, _, query = call.path.partition("?")
        parts = path.strip("/").split("/")
        if call.surface != "serverless" or len(parts) != 3 or parts[2] not in ("run", "runsync"):
            return
        if "api_key=" in query:
            return  # refused by the server (a key in the URL)
        key = (call.authorization or "").removeprefix("Bearer ").strip()
        row = self.endpoints.get(parts[1])
        if key in self.api_keys and row is not None:
            self._start_worker(row)

    def _start_worker(self, row: dict[str, Any]) -> None:
        """Run `on_endpoint_created` once per endpoint, on the server's loop (a sync hook on
        a thread, so a slow one cannot stall the fake)."""
        if row["id"] in self._worker_started:
            return
        self._worker_started.add(row["id"])
        hook = self.on_endpoint_created
        if hook is None:
            return
        view = self._endpoint_view(row)

        async def run() -> None:
            result = (
                hook(view)
                if inspect.iscoroutinefunction(hook)
                else await asyncio.to_thread(hook, view)
            )
            if inspect.isawaitable(result):
                await result

        task = asyncio.get_running_loop().create_task(run())
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        with self.lock:
            row = self.endpoints[endpoint_id]
            jobs = [j for j in self.jobs.values() if j.endpoint_id == endpoint_id]
            count = {
                s: sum(j.status == s for j in jobs)
                for s in ("COMPLETED", "FAILED", "IN_PROGRESS", "IN_QUEUE")
            }
            workers = dict.fromkeys(WORKER_STATES, 0)
            if endpoint_id in self._workers:
                workers.update(self._workers[endpoint_id])
            elif row["workersMax"] > 0 and not self.has_capacity(endpoint_id):
                workers["throttled"] = row["workersMax"]
            elif row["workersMax"] > 0:
                workers["running"] = min(count["IN_PROGRESS"], row["workersMax"])
                workers["ready"] = 0 if workers["running"] else 1
        return {
            "jobs": {
                "completed": count["COMPLETED"],
                "failed": count["FAILED"],
                "inProgress": count["IN_PROGRESS"],
                "inQueue": count["IN_QUEUE"],
                "retried": 0,
            },
            "workers": workers,
        }


class Resolvers:
    """Root value for graphql-core: each method resolves one root field."""

    def __init__(self, state: FakeRunpodState, created: list[dict[str, Any]]) -> None:
        self.s = state
        self.created = created  # endpoints created by this request, for the hook

    def myself(self, info: Any) -> dict[str, Any]:
        return {
            "id": "user_fake",
            "email": "operator@example.com",
            "endpoints": [self.s._endpoint_view(e) for e in self.s.endpoints.values()],
            "podTemplates": [dict(t) for t in self.s.templates.values()],
            "serverlessDiscount": None,
        }

    def gpuTypes(self, info: Any, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        wanted = (input or {}).get("id")
        return [dict(g) for g in GPU_TYPES if wanted in (None, g["id"])]

    def saveTemplate(self, info: Any, input: dict[str, Any] | None = None) -> dict[str, Any]:
        data = dict(input or {})
        if data.get("dockerArgs") is None:
            raise GraphQLError("Something went wrong. Please try again later or contact support.")
        template_id = data.pop("id", None)
        for other in self.s.templates.values():
            if other["name"] == data["name"] and other["id"] != template_id:
                raise GraphQLError("Template name must be unique")
        if template_id is not None and template_id not in self.s.templates:
            raise GraphQLError("Template not found")
        row = {
            "isServerless": False,
            "ports": "",
            "readme": "",
            "volumeMountPath": None,
            **data,
            "id": template_id or new_id(10),
            "env": [dict(e) for e in data.get("env") or []],
        }
        self.s.templates[row["id"]] = row
        if template_id is None:
            self.s._created.append(("template", row["id"], row["name"]))
        return dict(row)

    def saveEndpoint(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        data = dict(input)
        endpoint_id = data.pop("id", None)
        if len(data["name"]) < 3:
            raise GraphQLError("Endpoint name must be at least 3 characters long")
        if data["templateId"] not in self.s.templates:
            raise GraphQLError("Template not found")
        pools = data["gpuIds"].split(",")
        if len(pools) > 3 or not set(pools) <= POOLS:
            raise GraphQLError(f"Invalid gpuIds: {data['gpuIds']}")
        if endpoint_id is not None and endpoint_id not in self.s.endpoints:
            raise GraphQLError("Endpoint not found")
        # With an id, every field is replaced: what the input leaves out goes back to default.
        row = {
            **ENDPOINT_DEFAULTS,
            **{k: v for k, v in data.items() if v is not None},
            "id": endpoint_id or new_id(14),
            "userId": "user_fake",
        }
        others = sum(e["workersMax"] for i, e in self.s.endpoints.items() if i != row["id"])
        if others + row["workersMax"] > self.s.worker_quota:
            raise GraphQLError(QUOTA_MESSAGE.format(quota=self.s.worker_quota))
        row.setdefault("createdAt", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.s.endpoints[row["id"]] = row
        if endpoint_id is None:
            self.s._created.append(("endpoint", row["id"], row["name"]))
        if row["workersMin"] >= 1 and row["id"] not in self.s._worker_started:
            # Min workers run at once; flex ones wait for a job (FakeRunpodState.record).
            self.s._worker_started.add(row["id"])
            self.created.append(self.s._endpoint_view(row))
        return self.s._endpoint_view(row)

    def deleteEndpoint(self, info: Any, id: str | None = None) -> None:
        row = self.s.endpoints.get(id or "")
        if row is None:
            raise GraphQLError("Endpoint not found")
        if row["workersMin"] or row["workersMax"]:
            raise GraphQLError("Endpoint must have 0 min and max workers before deletion")
        del self.s.endpoints[row["id"]]
        self.s._release_lag[row["templateId"]] = self.s.template_release_lag

    def deleteTemplate(self, info: Any, templateName: str | None = None) -> None:
        row = self.s._find(self.s.templates, templateName or "")
        if row is None or row["name"] != templateName:
            raise GraphQLError("Template not found")
        if any(e["templateId"] == row["id"] for e in self.s.endpoints.values()):
            raise GraphQLError("Template is in use by an endpoint")
        if self.s._release_lag.get(row["id"], 0) > 0:
            self.s._release_lag[row["id"]] -= 1
            raise GraphQLError("Template is in use by an endpoint")
        del self.s.templates[row["id"]]

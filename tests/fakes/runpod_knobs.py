"""Fault knobs of the fake Runpod, shared by its GraphQL, REST and job APIs, and the knobs
only its REST API v2 reads (a mixin of FakeRunpodState, tests/fakes/runpod_state.py).

A fault names a `surface` ("graphql", "rest", "serverless" or "any") and optionally a
`field`: a GraphQL root field ("saveEndpoint") or a REST operationId ("createEndpoint").
`lose_answer_next` and `refuse_next` pick the surface from the field when none is given:
no field means "graphql" (as before REST existed); a GraphQL root field "graphql"; a REST
operationId "rest"; a name both APIs have (`deleteEndpoint`, `deleteTemplate`) "any", so
the fault meets whichever API the client under test speaks.

A hold (`hold(field)`) keeps calls waiting at the fake instead of failing them: a client
stuck on a slow answer, e.g. a process that stalls (SIGSTOP) while Runpod still holds its
call.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

AVAILABILITY_LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
GRAPHQL_FIELDS = frozenset(
    {"myself", "gpuTypes", "saveTemplate", "deleteTemplate", "saveEndpoint", "deleteEndpoint"}
)


@dataclass
class Fault:
    status: int
    surface: str
    field: str | None
    retry_after: str | None
    after_commit: bool = False
    message: str | None = None  # GraphQL: an error at HTTP 200; REST: a 400 problem's detail


class Hold:
    """Calls of one `field` held at the fake until `release()`. Each call it catches waits
    there: before its mutation runs (by default: Runpod does it only once the answer may go)
    or, with `commit_first`, after it ran and before the answer is sent. `stop_catching()`
    lets later calls through at once while the caught ones keep waiting. On the job API
    the field is the action ("run", "runsync"), and `commit_first` holds a queued job's
    answer. Read from any thread: `caught` (each caught call's path, GraphQL variables or
    REST body), `names()`, `let_through` (caught calls that have gone on since release)."""

    def __init__(self, surface: str, field: str, commit_first: bool) -> None:
        self.surface = surface
        self.field = field
        self.commit_first = commit_first
        self._lock = threading.Lock()
        self._catching = True
        self._released = threading.Event()
        self._caught: list[tuple[str, dict[str, Any]]] = []
        self._let_through = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def caught(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._caught)

    @property
    def let_through(self) -> int:
        with self._lock:
            return self._let_through

    def names(self) -> set[str]:
        """The `name` each caught call carried (a template's or endpoint's)."""
        found = set()
        for _, variables in self.caught:
            given = variables.get("input", variables)
            if isinstance(given, dict) and isinstance(given.get("name"), str):
                found.add(given["name"])
        return found

    def stop_catching(self) -> None:
        """Later calls go through at once; those caught keep waiting for `release()`."""
        with self._lock:
            self._catching = False

    def release(self) -> None:
        """Stop catching and let every caught call go on."""
        with self._lock:
            self._catching = False
            self._released.set()
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def catch(self, surface: str, fields: tuple[str, ...], path: str, variables: Any) -> bool:
        if self.surface not in ("any", surface) or self.field not in fields:
            return False
        with self._lock:
            if not self._catching:
                return False
            self._caught.append((path, dict(variables) if isinstance(variables, dict) else {}))
        return True

    async def wait(self) -> None:
        event = asyncio.Event()
        with self._lock:
            if not self._released.is_set():
                self._waiters.append((asyncio.get_running_loop(), event))
            else:
                event.set()
        await event.wait()
        with self._lock:
            self._let_through += 1


def _surface_of(field: str | None, surface: str | None) -> str:
    if surface is not None:
        return surface
    from tests.fakes.runpod_contract import operations  # the document, read once

    is_rest = field is not None and any(op.operation_id == field for op in operations())
    if field in GRAPHQL_FIELDS:
        return "any" if is_rest else "graphql"
    return "rest" if is_rest else "graphql"


class FaultKnobs:
    """Knobs and REST-only state; `_init_knobs()` runs from FakeRunpodState.__init__."""

    lock: threading.RLock
    pools_without_capacity: set[str]

    def _init_knobs(self) -> None:
        self._faults: list[Fault] = []
        # pool id -> NONE|LOW|MEDIUM|HIGH for `GET /v2/catalog/gpus` (default HIGH; a pool in
        # `pools_without_capacity` reads NONE whatever this says).
        self.gpu_availability: dict[str, str] = {}
        # endpoint id -> log lines its workers' SSE log route serves (every worker the same).
        self.worker_log_lines: dict[str, list[str]] = {}
        # endpoint id or name -> USD Runpod has billed for it (`GET /v2/billing/serverless`);
        # kept after the endpoint is deleted, as Runpod's billing history is.
        self.billed: dict[str, float] = {}
        # answers of the REST fake that broke Runpod's OpenAPI document (each also a 500).
        self.contract_violations: list[str] = []
        # calls kept waiting at the fake (`hold`); none by default.
        self._holds: list[Hold] = []

    def hold(self, field: str, *, surface: str | None = None, commit_first: bool = False) -> Hold:
        """Hold every later call of `field` (a GraphQL root field, a REST operationId, or on
        the job API, surface "serverless", "run"/"runsync") until the returned `Hold` is
        released; see `Hold`."""
        held = Hold(_surface_of(field, surface), field, commit_first)
        with self.lock:
            self._holds.append(held)
        return held

    def catch_hold(
        self, surface: str, fields: tuple[str, ...], path: str, variables: Any
    ) -> Hold | None:
        """The hold that catches this call, if any (the server then awaits its `wait()`)."""
        with self.lock:
            holds = list(self._holds)
        return next((h for h in holds if h.catch(surface, fields, path, variables)), None)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | str | None = None,
        surface: str = "any",
        field: str | None = None,
    ) -> None:
        """Answer the next `n` matching requests with `status`, doing nothing."""
        with self.lock:
            ra = None if retry_after is None else str(retry_after)
            self._faults += [Fault(status, surface, field, ra) for _ in range(n)]

    def clear_faults(self) -> None:
        """Drop the faults not yet served: Runpod works again."""
        with self.lock:
            self._faults.clear()

    def lose_answer_next(
        self, field: str, n: int = 1, status: int = 502, *, surface: str | None = None
    ) -> None:
        """Run the next `n` calls of `field` (GraphQL root field or REST operationId), then
        answer `status`: a lost answer."""
        kind = _surface_of(field, surface)
        with self.lock:
            self._faults += [Fault(status, kind, field, None, True) for _ in range(n)]

    def refuse_next(
        self, message: str, n: int = 1, *, field: str | None = None, surface: str | None = None
    ) -> None:
        """Refuse the next `n` calls (of `field`), doing nothing: on GraphQL `errors:
        [{message}]` at HTTP 200 (e.g. Runpod's "Something went wrong. Please try again"),
        on REST a 400 problem+json with `message` as its `detail`."""
        kind = _surface_of(field, surface)
        with self.lock:
            self._faults += [Fault(200, kind, field, None, message=message) for _ in range(n)]

    def take_fault(self, surface: str, fields: tuple[str, ...], after: bool) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.after_commit != after or fault.surface not in ("any", surface):
                    continue
                if fault.field is not None and fault.field not in fields:
                    continue
                self._faults.remove(fault)
                return fault
        return None

    def availability(self, pool: str | None) -> str:
        """Serverless stock of a pool, as the catalog reports it."""
        with self.lock:
            if pool is None or pool in self.pools_without_capacity:
                return "NONE"
            level = self.gpu_availability.get(pool, "HIGH")
        if level not in AVAILABILITY_LEVELS:
            raise ValueError(f"gpu_availability[{pool!r}] = {level!r}: not {AVAILABILITY_LEVELS}")
        return level

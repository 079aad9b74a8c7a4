"""Name lookups for webhook targets: a thread pool of their own, shared fairly by tenants.

`getaddrinfo` blocks a thread, and a timeout only stops the waiting, not the thread: a
lookup against a slow DNS server keeps its thread until the OS resolver gives up. On the
event loop's default executor (a handful of threads) one tenant's slow names would hold
every thread, and everyone else's URL checks and deliveries would time out behind them.
So lookups run on this pool, and each tenant has at most `PER_TENANT_LOOKUPS` of them on a
thread at a time; the rest wait in the tenant's own queue. A slot is given up when the
lookup's thread actually finishes, not when the caller stops waiting, so a tenant's hung
lookups never hold more than its share of the pool. Waiting for a slot is part of the
caller's timeout; a caller that stops waiting for a lookup not yet started removes it.

Nothing here is bound to an event loop (a lock, a deque and `concurrent.futures`), so one
pool serves the process whatever loop awaits it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

POOL_THREADS: Final = 16
PER_TENANT_LOOKUPS: Final = 4

# (host, port) -> the host's addresses as text; blocks its thread.
BlockingLookup = Callable[[str, int], list[str]]


def getaddrinfo_addresses(host: str, port: int) -> list[str]:
    """The OS resolver's answer for a TCP connection to `host`, as address texts."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


@dataclass(eq=False)
class _Job:
    host: str
    port: int
    future: Future[list[str]] = field(default_factory=Future)


class LookupPool:
    """A bounded thread pool for blocking lookups, with a per-tenant cap on lookups running.

    A tenant's lane is run by the pool threads it holds: a thread that finishes a lookup
    takes the lane's next queued one, and gives its slot up only when none is left.
    """

    def __init__(
        self,
        *,
        threads: int = POOL_THREADS,
        per_tenant: int = PER_TENANT_LOOKUPS,
        lookup: BlockingLookup = getaddrinfo_addresses,
    ) -> None:
        if threads < 1 or per_tenant < 1:
            raise ValueError("threads and per_tenant must be at least 1")
        self.per_tenant = per_tenant
        self._lookup = lookup
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook-dns")
        self._lock = threading.Lock()
        self._running: dict[str | None, int] = {}  # tenant -> lookups on a thread
        self._queued: dict[str | None, deque[_Job]] = {}  # tenant -> lookups waiting

    def running(self, tenant: str | None) -> int:
        """How many of the tenant's lookups hold a thread now (finished ones do not)."""
        with self._lock:
            return self._running.get(tenant, 0)

    def queued(self, tenant: str | None) -> int:
        """How many of the tenant's lookups wait for one of its slots."""
        with self._lock:
            return len(self._queued.get(tenant, ()))

    def submit(self, host: str, port: int, *, tenant: str | None) -> Future[list[str]]:
        """Start the lookup when the tenant has a free slot, else queue it in its lane.

        Cancelling the returned future removes a queued lookup; a running one runs on.
        """
        job = _Job(host, port)
        with self._lock:
            start = self._running.get(tenant, 0) < self.per_tenant
            if start:
                self._running[tenant] = self._running.get(tenant, 0) + 1
            else:
                self._queued.setdefault(tenant, deque()).append(job)
        if start:
            try:
                self._executor.submit(self._run_lane, tenant, job)
            except BaseException:  # the pool is shut down: the slot was never used
                self._give_up_slot(tenant)
                raise
        else:
            job.future.add_done_callback(lambda done: self._forget(tenant, job, done))
        return job.future

    async def resolve(self, host: str, port: int, *, tenant: str | None) -> list[str]:
        """`submit`, awaited from the event loop; cancelling the wait cancels a queued lookup."""
        return await asyncio.wrap_future(self.submit(host, port, tenant=tenant))

    def shutdown(self) -> None:
        """Stop taking lookups; those running finish on their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run_lane(self, tenant: str | None, job: _Job | None) -> None:
        while job is not None:
            if job.future.set_running_or_notify_cancel():
                try:
                    addresses = self._lookup(job.host, job.port)
                except BaseException as exc:  # handed to the waiter, whatever it is
                    job.future.set_exception(exc)
                else:
                    job.future.set_result(addresses)
            job = self._next_or_release(tenant)

    def _next_or_release(self, tenant: str | None) -> _Job | None:
        """The lane's next lookup for this thread, or give the thread's slot up."""
        with self._lock:
            waiting = self._queued.get(tenant)
            if waiting:
                job = waiting.popleft()
                if not waiting:
                    del self._queued[tenant]
                return job
        self._give_up_slot(tenant)
        return None

    def _give_up_slot(self, tenant: str | None) -> None:
        with self._lock:
            left = self._running.get(tenant, 0) - 1
            if left > 0:
                self._running[tenant] = left
            else:
                self._running.pop(tenant, None)

    def _forget(self, tenant: str | None, job: _Job, done: Future[list[str]]) -> None:
        """A queued lookup whose caller gave up leaves the lane at once."""
        if not done.cancelled():
            return
        with self._lock:
            waiting = self._queued.get(tenant)
            if waiting is None:
                return
            try:
                waiting.remove(job)
            except ValueError:  # already taken by a thread, which skips it
                return
            if not waiting:
                del self._queued[tenant]


_shared: LookupPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> LookupPool:
    """The process's pool for webhook lookups, made on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LookupPool()
        return _shared

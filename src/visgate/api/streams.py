"""Open `/events` streams on this instance: a slot per stream, capped per API key and in all,
and one store watcher per deployment shared by every stream on it.

A stream lasts until its deployment settles (up to the platform's request timeout), so the
request rate limit, which counts only the opening request, does not bound what streams hold:
a request slot of the instance's concurrency each, and a store read per poll each (a billed
document read on Firestore). Slots cap the first; the shared watcher makes the second one read
per deployment per poll interval, however many streams watch it.

Counts and watchers are per instance and in memory: an instance knows only its own streams,
so a key may hold `per_key` streams on each instance it reaches, and a restart frees every
slot with the streams it ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotFoundError, RateLimitedError, TransientError
from visgate.domain.status import SETTLED
from visgate.kit import retry_after_header
from visgate.logging import get_logger
from visgate.store.repositories import Store

log = get_logger(__name__)

# A stream frees its slot only when its deployment settles or its client leaves, so there is
# no exact time to give; a few seconds keeps a retrying client from spinning.
RETRY_AFTER_S = 5.0

WatchKey = tuple[str, str]  # (tenant, deployment_id)


@dataclass(eq=False)
class _Watcher:
    """Reads one deployment every `poll` seconds while anyone subscribes, and hands each read
    to all of them. `version` counts reads published; `_changed` is set (and replaced) on
    each publish, so a subscriber that checks `version` and then waits never misses one."""

    store: Store
    key: WatchKey
    poll: float
    subscribers: int = 0
    record: Deployment | None = None
    version: int = 0
    ended: bool = False
    task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, record: Deployment) -> None:
        self.record = record
        self.version += 1
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed(self) -> None:
        await self._changed.wait()

    async def run(self) -> None:
        tenant, deployment_id = self.key
        try:
            while True:
                await asyncio.sleep(self.poll)
                try:
                    dep = await self.store.deployments.get(deployment_id, tenant=tenant)
                except DeploymentNotFoundError:
                    return
                except TransientError:
                    continue  # a store hiccup: the next poll tries again
                self.publish(dep)
                if dep.status in SETTLED:
                    return
        except Exception:
            # Not a store hiccup: end the streams (their clients reconnect with
            # Last-Event-ID) rather than poll a read that keeps failing.
            log.exception("event_watcher_failed", deployment_id=deployment_id)
        finally:
            self.end()


class Subscription:
    """One stream's view of a watcher: `next()` waits for a read newer than the last one it
    returned. Reads in between are skipped, not lost: each record carries the whole history."""

    def __init__(self, streams: EventStreams, watcher: _Watcher) -> None:
        self._streams = streams
        self._watcher = watcher
        self._seen = watcher.version
        self._closed = False

    async def next(self) -> Deployment | None:
        """The next record read, or None once the deployment is gone or the watcher ended."""
        watcher = self._watcher
        while watcher.version == self._seen:
            if watcher.ended:
                return None
            await watcher.changed()
        self._seen = watcher.version
        return watcher.record

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._streams._leave(self._watcher)


class StreamSlot:
    """One open stream's place in the caps; `release()` frees it (and its subscription) and
    is safe to call more than once, so every way a stream ends can call it."""

    def __init__(self, streams: EventStreams, key_id: str) -> None:
        self._streams = streams
        self.key_id = key_id
        self._subscription: Subscription | None = None
        self._released = False

    def watch(self, store: Store, tenant: str, deployment_id: str, poll: float) -> Subscription:
        """Subscribe this stream to its deployment's watcher (started if none runs)."""
        if self._subscription is None:
            self._subscription = self._streams._join(store, (tenant, deployment_id), poll)
        return self._subscription

    def release(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if not self._released:
            self._released = True
            self._streams._free(self.key_id)


class EventStreams:
    """The caps and the watchers of this instance's `/events` streams (one per app)."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._by_key: dict[str, int] = {}
        self._open = 0
        self._watchers: dict[WatchKey, _Watcher] = {}
        self._closed = False

    @property
    def open_streams(self) -> int:
        return self._open

    def open_for(self, key_id: str) -> int:
        return self._by_key.get(key_id, 0)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def acquire(self, key_id: str) -> StreamSlot:
        """A slot for a new stream, or `RateLimitedError` (429, Retry-After) over a cap."""
        if self._by_key.get(key_id, 0) >= self.per_key:
            raise RateLimitedError(
                f"over {self.per_key} open event streams for this key on this instance: "
                "close one, or poll GET /v1/deployments/{id}",
                headers=retry_after_header(RETRY_AFTER_S),
            )
        if self._open >= self.total or self._closed:
            raise RateLimitedError(
                f"instance busy: {self.total} event streams open; retry later, or poll "
                "GET /v1/deployments/{id}",
                headers=retry_after_header(RETRY_AFTER_S),
            )
        self._by_key[key_id] = self._by_key.get(key_id, 0) + 1
        self._open += 1
        return StreamSlot(self, key_id)

    def _free(self, key_id: str) -> None:
        self._open -= 1
        left = self._by_key[key_id] - 1
        if left:
            self._by_key[key_id] = left
        else:
            del self._by_key[key_id]

    def _join(self, store: Store, key: WatchKey, poll: float) -> Subscription:
        watcher = self._watchers.get(key)
        if watcher is None or watcher.ended:
            watcher = _Watcher(store=store, key=key, poll=poll)
            if self._closed:
                watcher.ended = True  # shutting down: the stream ends instead of waiting
            else:
                self._watchers[key] = watcher
                watcher.task = asyncio.create_task(self._run(watcher), name=f"events:{key[1]}")
        watcher.subscribers += 1
        return Subscription(self, watcher)

    async def _run(self, watcher: _Watcher) -> None:
        try:
            await watcher.run()
        finally:
            self._forget(watcher)  # before its streams wake: a new stream starts a new one

    def _leave(self, watcher: _Watcher) -> None:
        watcher.subscribers -= 1
        if watcher.subscribers <= 0:
            self._forget(watcher)
            if watcher.task is not None:
                watcher.task.cancel()  # nobody reads what it would read next

    def _forget(self, watcher: _Watcher) -> None:
        if self._watchers.get(watcher.key) is watcher:
            del self._watchers[watcher.key]

    async def aclose(self) -> None:
        """Stop every watcher (the app is shutting down); their streams end at once."""
        self._closed = True
        watchers = list(self._watchers.values())
        self._watchers.clear()
        tasks = [w.task for w in watchers if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

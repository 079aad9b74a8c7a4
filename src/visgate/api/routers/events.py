"""`GET /v1/deployments/{id}/events`: Server-Sent Events, one per status change.

Each event's id is the status change's sequence number, so a client that reconnects with
`Last-Event-ID` gets only what it missed. The stream reads the store (not process memory),
so it works whichever instance the client reaches, and closes at a settled status.

Streams are bounded (`visgate.api.streams`): a key may hold `event_streams_per_key` open
streams on an instance and the instance `event_streams_max` in all (more answer 429 before
any stream starts), and the streams on one deployment share one store read per poll.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from visgate.api.deps import CurrentKey, ServicesDep, require_deployment_id
from visgate.api.schemas import ERROR_RESPONSES
from visgate.api.streams import EventStreams, StreamSlot
from visgate.domain.deployment import Deployment, StatusEvent
from visgate.domain.status import SETTLED
from visgate.kit import iso
from visgate.settings import Settings, StoreKind

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=ERROR_RESPONSES)

POLL_SECONDS = 0.25  # SQLite: a local read, so status changes show at once
# Firestore bills every document read: 1 s keeps a watched deployment to about one read a
# second (however many streams watch it) for a delay nobody watching it notices.
FIRESTORE_POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15


def poll_seconds(settings: Settings) -> float:
    return FIRESTORE_POLL_SECONDS if settings.store is StoreKind.firestore else POLL_SECONDS


def _event(dep: Deployment, change: StatusEvent) -> dict[str, Any]:
    """One status change. `status`, `event_at` and `event_message` (the log line the change
    wrote) are the change's own: a replayed event must not say the deployment is already
    `ready`, nor show a later step's line. The other fields, `last_log` included, are the
    record as it is now."""
    status = change.status.value
    data = {**dep.public(), "status": status, "event_status": status, "event_at": iso(change.at)}
    data["event_message"] = change.message
    data.pop("logs", None)
    data["last_log"] = dep.logs[-1].public() if dep.logs else None
    return {"id": str(change.seq), "event": "status", "data": json.dumps(data)}


class _SlotResponse(EventSourceResponse):
    """Frees the stream's slot however the response ends, even one whose body never started
    (the client gone, or a send failing, before the first event): the generator's own
    `finally` runs only once it has started."""

    def __init__(self, content: AsyncIterator[dict[str, Any]], slot: StreamSlot) -> None:
        super().__init__(content, ping=HEARTBEAT_SECONDS)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()


@router.get(
    "/{deployment_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def deployment_events(
    deployment_id: str,
    key: CurrentKey,
    services: ServicesDep,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventSourceResponse:
    require_deployment_id(deployment_id)
    streams: EventStreams = request.app.state.event_streams
    # Over a cap answers 429 before the store is read or any stream starts.
    slot = streams.acquire(key.id)
    try:
        # A 404 answers before the stream starts.
        dep = await services.store.deployments.get(deployment_id, tenant=key.tenant)
    except BaseException:
        slot.release()
        raise
    try:
        sent = int(last_event_id) if last_event_id else 0
    except ValueError:
        sent = 0
    poll = poll_seconds(services.settings)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        nonlocal dep, sent
        try:
            while True:
                for change in dep.history:
                    if change.seq > sent:
                        sent = change.seq
                        yield _event(dep, change)
                if dep.status in SETTLED and sent >= dep.history[-1].seq:
                    return
                if await request.is_disconnected():
                    return
                watch = slot.watch(services.store, key.tenant, deployment_id, poll)
                newer = await watch.next()
                if newer is None:  # the deployment is gone, or the instance is stopping
                    return
                dep = newer
        finally:
            slot.release()

    return _SlotResponse(stream(), slot)

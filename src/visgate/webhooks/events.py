"""The events we send and their payload, in the Standard Webhooks shape `{type, timestamp, data}`.

The body is built once, when the event happens, and stored with its id: every retry sends
the same bytes under the same `webhook-id`, so receivers can deduplicate.
"""

from __future__ import annotations

import json
import secrets
from enum import StrEnum
from typing import Any

from visgate.kit import iso


class EventType(StrEnum):
    ready = "deployment.ready"
    failed = "deployment.failed"
    deleted = "deployment.deleted"


# Fields of the deployment's public shape left out of the payload: the log grows with every
# step and retry, and receivers should stay well under the spec's ~20 KB advice.
_OMITTED_FIELDS = ("logs",)


def new_message_id() -> str:
    """A random webhook-id: URL-safe, no `.`, so it is safe inside the signed string."""
    return "msg_" + secrets.token_urlsafe(18)


def build_event(
    event_type: EventType | str,
    deployment_public: dict[str, Any],
    now: float,
    *,
    msg_id: str | None = None,
) -> tuple[str, bytes]:
    """`(webhook-id, body)` for one event; persist both and reuse them on every retry.

    `deployment_public` is the deployment's GET shape; `now` (unix seconds) is when the
    event happened. Pass `msg_id` to derive ids yourself (e.g. one per deployment and event,
    so queueing an event twice makes one delivery); otherwise a random `msg_…` id is made.
    """
    kind = EventType(event_type)
    data = {k: v for k, v in deployment_public.items() if k not in _OMITTED_FIELDS}
    payload = {"type": kind.value, "timestamp": iso(now), "data": data}
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return msg_id or new_message_id(), body

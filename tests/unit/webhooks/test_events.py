"""Event payloads: the Standard Webhooks `{type, timestamp, data}` shape, built once per event."""

from __future__ import annotations

import json

import pytest

from visgate.webhooks import verify_webhook
from visgate.webhooks.events import EventType, build_event
from visgate.webhooks.signing import build_headers

PUBLIC = {
    "deployment_id": "dep_0123456789abcdef",
    "status": "ready",
    "model_id": "stabilityai/sdxl-turbo",
    "endpoint_url": "https://api.runpod.ai/v2/abc",
    "logs": [{"at": "2025-06-15T14:13:20Z", "message": "ready"}] * 50,
    "error": None,
}


def test_event_names_are_the_documented_ones() -> None:
    assert [e.value for e in EventType] == [
        "deployment.ready",
        "deployment.failed",
        "deployment.deleted",
    ]


def test_payload_shape_and_compact_bytes() -> None:
    msg_id, body = build_event("deployment.ready", PUBLIC, 1_750_000_000.25)
    payload = json.loads(body)
    assert payload["type"] == "deployment.ready"
    assert payload["timestamp"] == "2025-06-15T15:06:40.250000Z"
    assert payload["data"]["deployment_id"] == "dep_0123456789abcdef"
    assert payload["data"]["endpoint_url"] == "https://api.runpod.ai/v2/abc"
    assert "logs" not in payload["data"]  # the log can grow large; GET has it
    assert b" " not in body.replace(b"stabilityai/sdxl-turbo", b"")
    assert msg_id.startswith("msg_")


def test_each_event_gets_its_own_id_unless_one_is_given() -> None:
    first, _ = build_event(EventType.failed, PUBLIC, 0)
    second, _ = build_event(EventType.failed, PUBLIC, 0)
    assert first != second and "." not in first + second
    given, _ = build_event(EventType.deleted, PUBLIC, 0, msg_id="msg_dep_1_deleted")
    assert given == "msg_dep_1_deleted"


def test_unknown_event_type_is_a_bug() -> None:
    with pytest.raises(ValueError):
        build_event("deployment.exploded", PUBLIC, 0)


def test_a_built_event_verifies_at_the_receiver() -> None:
    from visgate.webhooks import generate_secret

    secret = generate_secret()
    msg_id, body = build_event("deployment.ready", {**PUBLIC, "model_id": "é/ü"}, 0)
    payload = verify_webhook(secret, build_headers(secret, msg_id, body), body)
    assert payload["data"]["model_id"] == "é/ü"

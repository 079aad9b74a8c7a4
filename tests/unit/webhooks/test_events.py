"""Event payloads: the Standard Webhooks `{type, timestamp, data}` shape, built once per event."""

from __future__ import annotations

import json

import pytest

from tests.support.webhooks import ready_deployment
from visgate.domain.deployment import LogEntry
from visgate.webhooks import generate_secret, verify_webhook
from visgate.webhooks.events import EventType, build_delivery
from visgate.webhooks.signing import build_headers

URL = "https://receiver.test/hook"


def test_event_names_are_the_documented_ones() -> None:
    assert [e.value for e in EventType] == [
        "deployment.ready",
        "deployment.failed",
        "deployment.deleted",
        "deployment.teardown_blocked",
    ]


def test_payload_shape_and_compact_bytes() -> None:
    dep = ready_deployment()
    dep.logs.extend(LogEntry(at=0, message="x" * 200) for _ in range(50))
    delivery = build_delivery("deployment.ready", dep, URL, 1_750_000_000.25)
    payload = json.loads(delivery.body)
    assert payload["type"] == "deployment.ready"
    assert payload["timestamp"] == "2025-06-15T15:06:40.250000Z"
    assert payload["data"]["deployment_id"] == "dep_1"
    assert payload["data"]["status"] == "ready"
    assert payload["data"]["endpoint_url"] == "https://x/v2/e"
    assert "logs" not in payload["data"]  # the log can grow large; GET has it
    assert " " not in delivery.body
    assert (delivery.url, delivery.tenant, delivery.key_id) == (URL, "t1", "k1")


def test_queueing_an_event_twice_makes_one_delivery_id() -> None:
    first = build_delivery(EventType.failed, ready_deployment(), URL, 0)
    again = build_delivery("deployment.failed", ready_deployment(), URL, 5)
    assert first.id == again.id == "msg_dep_1_failed"
    assert "." not in first.id  # the id is part of the signed string
    assert build_delivery(EventType.deleted, ready_deployment(), URL, 0).id != first.id


def test_unknown_event_type_is_a_bug() -> None:
    with pytest.raises(ValueError):
        build_delivery("deployment.exploded", ready_deployment(), URL, 0)


def test_a_built_event_verifies_at_the_receiver() -> None:
    secret = generate_secret()
    dep = ready_deployment()
    dep.model_id = "é/ü"
    delivery = build_delivery("deployment.ready", dep, URL, 0)
    body = delivery.body.encode()
    payload = verify_webhook(secret, build_headers(secret, delivery.id, body), body)
    assert payload["data"]["model_id"] == "é/ü"

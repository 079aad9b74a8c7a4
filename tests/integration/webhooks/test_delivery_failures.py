"""Deliveries through the delivery loop (`DeliveryWorker`) when an attempt goes wrong in ways
the sender does not foresee, or the stored target can never be called: every try is logged
on the deployment, the schedule runs out and the deployment reads `webhook_failed`; nothing
escapes as an exception that would bring the delivery back with its lease forever.
WEBHOOK_RETRY_SCHEDULE is 0.2,0.2 here (three tries); the store's clock is moved instead of
sleeping."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from tests.integration.orchestrator.conftest import (  # noqa: F401  (fixtures)
    Plane,
    hub_server,
    issued,
    make_plane,
    plane,
    runpod,
    runpod_server,
)
from tests.support.receivers import webhook_receiver
from visgate.auth.api_keys import IssuedKey, issue_key
from visgate.domain.deployment import Deployment
from visgate.domain.records import WebhookDelivery
from visgate.domain.status import Status
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.store.deliveries import DELIVERIES
from visgate.webhooks import urls
from visgate.webhooks.events import delivery_id

NOT_PUBLIC = "a private, loopback or link-local address"


class Exploding(httpx.AsyncBaseTransport):
    """A connection layer that fails the way no handler expects, as a socket given an
    out-of-range port does (`OverflowError`, wrapped in an `ExceptionGroup` by the
    happy-eyeballs connect)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.error


@pytest.fixture
async def worker(plane: Plane) -> AsyncIterator[DeliveryWorker]:  # noqa: F811
    made = DeliveryWorker(plane.services, owner="unit")
    yield made
    await made.aclose()


async def _ready(plane: Plane, issued: IssuedKey, url: str, tenant: str = "team") -> Deployment:  # noqa: F811
    """A ready deployment of `tenant` whose `deployment.ready` webhook to `url` is queued."""
    return await plane.ready_with_webhook(issued, url, tenant=tenant)


async def _pass(worker: DeliveryWorker) -> None:
    await worker.run_once()
    await worker.drain()


def _clock_ahead(plane: Plane, seconds: float) -> None:  # noqa: F811
    plane.store.deliveries.clock = lambda: time.time() + seconds


async def _logs(plane: Plane, dep: Deployment) -> str:  # noqa: F811
    return json.dumps([e.message for e in (await plane.store.deployments.get(dep.id)).logs])


async def _delivery(plane: Plane, dep: Deployment) -> WebhookDelivery:  # noqa: F811
    doc = await plane.store.deliveries.backend.get(
        DELIVERIES, delivery_id(dep.id, "deployment.ready")
    )
    assert doc is not None
    return WebhookDelivery.model_validate(doc)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (OverflowError("connect(): port must be 0-65535."), "unexpected error: OverflowError"),
        (
            ExceptionGroup("connect", [OverflowError("port must be 0-65535."), OSError("x")]),
            "unexpected error: ExceptionGroup(OverflowError, OSError)",
        ),
    ],
    ids=["OverflowError", "ExceptionGroup"],
)
async def test_an_unexpected_error_is_a_failed_try_and_the_schedule_ends_in_webhook_failed(
    plane: Plane,  # noqa: F811
    issued: IssuedKey,  # noqa: F811
    worker: DeliveryWorker,
    error: Exception,
    text: str,
) -> None:
    transport = Exploding(error)
    await worker.aclose()
    worker._client = httpx.AsyncClient(transport=transport)
    dep = await _ready(plane, issued, "http://127.0.0.1:9/hook")

    for n, ahead in enumerate((0.0, 0.3, 0.6), start=1):
        _clock_ahead(plane, ahead)  # the schedule's next try is due
        await _pass(worker)
        assert transport.calls == n
        assert len((await _delivery(plane, dep)).attempts) == n
    delivery = await _delivery(plane, dep)
    assert delivery.state == "failed" and delivery.lease_owner is None
    assert [a.error for a in delivery.attempts] == [text] * 3
    assert all(not a.ok and a.status_code is None for a in delivery.attempts)
    logs = await _logs(plane, dep)
    assert f"try 1 failed ({text})" in logs and f"try 2 failed ({text})" in logs
    assert f"failed after 3 tries: {text}" in logs
    assert "port must be" not in logs  # the exception's own text stays in the server log
    assert (await plane.store.deployments.get(dep.id)).status is Status.webhook_failed


async def test_a_stored_url_with_an_impossible_port_is_refused_for_good_at_once(
    plane: Plane,  # noqa: F811
    issued: IssuedKey,  # noqa: F811
    worker: DeliveryWorker,
) -> None:
    """A URL stored before ports were checked at POST: refused and disabled, not retried."""
    dep = await _ready(plane, issued, "https://93.184.215.14:99999/h")
    await _pass(worker)
    (attempt,) = (await _delivery(plane, dep)).attempts
    assert attempt.error == "refused: user_webhook_url has a port outside 1-65535 (99999)"
    assert "failed after 1 tries" in await _logs(plane, dep)
    assert (await plane.store.deployments.get(dep.id)).status is Status.webhook_failed


async def test_a_refused_target_is_logged_for_the_user_without_its_address(
    make_plane: object,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user reads the delivery log on the record: it says the target is not public,
    not which internal address its name resolved to."""

    async def resolves_internally(
        host: str, port: int, *, tenant: str | None = None
    ) -> Sequence[str]:
        return ["10.8.0.12"]

    monkeypatch.setattr(urls, "system_resolver", resolves_internally)
    strict: Plane = await make_plane(WEBHOOK_ALLOW_PRIVATE_URLS=False)  # type: ignore[operator]
    key = await issue_key(strict.services, "team")
    made = DeliveryWorker(strict.services, owner="unit")
    try:
        dep = await _ready(strict, key, "https://hooks.example.com/in")
        await _pass(made)
    finally:
        await made.aclose()
    (attempt,) = (await _delivery(strict, dep)).attempts
    assert NOT_PUBLIC in (attempt.error or "")
    logs = await _logs(strict, dep)
    assert NOT_PUBLIC in logs and "10.8.0.12" not in logs and "10.8.0.12" not in attempt.error


async def test_a_delivery_looks_its_target_up_under_its_tenant(
    plane: Plane,  # noqa: F811
    issued: IssuedKey,  # noqa: F811
    worker: DeliveryWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str | None] = []

    async def loopback(host: str, port: int, *, tenant: str | None = None) -> Sequence[str]:
        asked.append(tenant)
        return ["127.0.0.1"]

    monkeypatch.setattr(urls, "system_resolver", loopback)
    with webhook_receiver() as receiver:
        port = httpx.URL(receiver.url).port
        dep = await _ready(plane, issued, f"http://hooks.test:{port}/hook", tenant="acme")
        await _pass(worker)
        assert len(receiver.deliveries) == 1
    assert asked == ["acme"]
    assert "delivered (try 1)" in await _logs(plane, dep)

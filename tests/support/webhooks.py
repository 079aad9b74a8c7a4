"""Webhook test helpers that need no server: a signing secret, the `deployment.ready` event
production would queue for a sample deployment and one send of it, an HTTP client, a
fixed-zone resolver."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from visgate.deployments.callback import apply_worker_callback
from visgate.deployments.schemas import WorkerCallback
from visgate.domain.deployment import Deployment
from visgate.domain.status import Status
from visgate.webhooks.events import build_delivery
from visgate.webhooks.sender import DeliveryAttempt, deliver_once
from visgate.webhooks.signing import generate_secret


@pytest.fixture
def secret() -> str:
    return generate_secret()


EVENT_TIME = 1_750_000_000.0


def ready_deployment(now: float = EVENT_TIME) -> Deployment:
    """`dep_1`, made ready at `now` by its worker's report, as production makes one."""
    dep = Deployment.new(id="dep_1", tenant="t1", key_id="k1", model_id="a/b", now=now)
    for status in (Status.selecting_gpu, Status.creating_endpoint):
        dep.move_to(status, now, status.value)
    dep.endpoint_id, dep.endpoint_url = "e", "https://x/v2/e"
    apply_worker_callback(dep, WorkerCallback(status="ready", models_loaded=["b"]), now)
    return dep


def ready_event(now: float = EVENT_TIME) -> tuple[str, bytes]:
    """(webhook-id, body) of the `deployment.ready` event queued for `ready_deployment()`,
    built as production builds it."""
    (event,) = ready_deployment(now).pending_events
    delivery = build_delivery(event, ready_deployment(now), "https://receiver.test/hook", now)
    return delivery.id, delivery.body.encode()


async def send_ready(
    client: httpx.AsyncClient, url: str, secret: str, *, allow_private: bool = True, **options: Any
) -> DeliveryAttempt:
    """One `deliver_once` of `ready_event()` to `url`, as the delivery loop sends it
    (`allow_private` on: the test receivers listen on 127.0.0.1)."""
    msg_id, body = ready_event()
    return await deliver_once(
        client,
        url=url,
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=allow_private,
        **options,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


class FakeDns:
    """A resolver with a fixed zone; records the names it was asked for."""

    def __init__(self, zone: dict[str, Sequence[str]]) -> None:
        self.zone = zone
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.zone:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.zone[host]


@pytest.fixture
def fake_dns() -> FakeDns:
    return FakeDns(
        {
            "hooks.example.com": ["93.184.216.34"],
            "v6.example.com": ["2606:4700:4700::1111"],
            "xn--bcher-kva.example": ["93.184.216.35"],
            "internal.example.com": ["10.0.0.7"],
            "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
            "loopback6.example.com": ["::1"],
            "mapped.example.com": ["::ffff:127.0.0.1"],
            "metadata-alias.example.com": ["169.254.169.254"],
            "cgnat.example.com": ["100.64.12.1"],
            "ula.example.com": ["fd00::5"],
            "hooks.test": ["127.0.0.1"],
            "impostor.test": ["127.0.0.1"],
            "two-addresses.test": ["127.0.0.2", "127.0.0.1"],
        }
    )

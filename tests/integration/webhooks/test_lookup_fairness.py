"""One tenant's slow DNS does not hold up another tenant's webhook URL check or delivery.

`socket.getaddrinfo` is replaced by a blocking fake: names starting with `slow` hold their
thread (as a lookup against an unresponsive DNS server does) until the test opens the gate.
Tenant A starts far more such lookups than any thread pool here has threads; tenant B's
check or delivery of a quick name must still finish well within the lookup timeout (cut to
1 s here). With lookups on a pool shared by everyone (the event loop's default executor),
B's lookup would wait behind A's and time out.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import Api, make_api  # noqa: F401  (fixtures)
from tests.integration.orchestrator.conftest import (  # noqa: F401  (fixtures)
    Plane,
    hub_server,
    make_plane,
    runpod,
    runpod_server,
)
from tests.support.receivers import webhook_receiver
from tests.support.waiting import eventually
from visgate.auth.api_keys import issue_key
from visgate.orchestrator.deliveries import DeliveryWorker
from visgate.webhooks import urls

PUBLIC = "93.184.216.34"
TIMEOUT_S = 1.0  # the lookup timeout during these tests (5 s in production)
QUICK_S = 0.5  # what "not held up" means: well under the timeout
SLOW_LOOKUPS = 40  # more than any default executor has threads (at most 32)


class SlowDns:
    """`socket.getaddrinfo`, blocking on `slow*` names; `quick` names answer at once."""

    def __init__(self, quick: dict[str, str]) -> None:
        self.quick = quick
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.blocked = 0
        self.real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.startswith("slow"):
            with self.lock:
                self.blocked += 1
            self.gate.wait(10)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, int(port)))]
        if name in self.quick:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.quick[name], int(port)))]
        return self.real(host, port, *args, **kwargs)

    def in_flight(self) -> int:
        with self.lock:
            return self.blocked


def _per_tenant_share() -> int:
    """How many lookups one tenant may have on threads (imported late: the timing checks
    come first, and say more when they fail)."""
    from visgate.webhooks.resolver import PER_TENANT_LOOKUPS

    return PER_TENANT_LOOKUPS


@pytest.fixture
def slow_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowDns]:
    dns = SlowDns({"hooks.example.com": PUBLIC, "fast.test": "127.0.0.1"})
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    monkeypatch.setattr(urls, "RESOLVE_TIMEOUT_SECONDS", TIMEOUT_S)
    yield dns
    dns.gate.set()  # free every blocked thread, whatever the test did


async def test_a_tenants_slow_dns_does_not_delay_another_tenants_url_check(
    make_api: Any,  # noqa: F811
    slow_dns: SlowDns,
) -> None:
    api: Api = await make_api(WEBHOOK_ALLOW_PRIVATE_URLS=False)
    slow = [
        asyncio.create_task(
            api.post_deployment("alice", user_webhook_url=f"https://slow-{i}.example.com/in")
        )
        for i in range(SLOW_LOOKUPS)
    ]
    try:
        await eventually(lambda: slow_dns.in_flight() >= 4, within=5, what="alice's lookups")
        started = time.perf_counter()
        resp = await api.post_deployment("bob", user_webhook_url="https://hooks.example.com/in")
        took = time.perf_counter() - started
        assert resp.status_code == 202, resp.text
        assert took < QUICK_S, f"bob's check took {took:.2f} s behind alice's lookups"
        # Alice's other checks wait for her own slots, not on threads.
        assert slow_dns.in_flight() == _per_tenant_share()
    finally:
        slow_dns.gate.set()
        await asyncio.gather(*slow)


async def test_a_tenants_slow_dns_does_not_delay_another_tenants_delivery(
    make_plane: Any,  # noqa: F811
    slow_dns: SlowDns,
) -> None:
    plane: Plane = await make_plane(VISGATE_DELIVERY_CONCURRENCY=SLOW_LOOKUPS + 8)
    issued = await issue_key(plane.services, "team")

    async def ready(tenant: str, url: str) -> None:
        await plane.ready_with_webhook(issued, url, tenant=tenant)

    worker = DeliveryWorker(plane.services, owner="unit")
    with webhook_receiver() as receiver:
        try:
            for i in range(SLOW_LOOKUPS):
                await ready("alpha", f"http://slow-{i}.example.com/hook")
            assert await worker.run_once() == SLOW_LOOKUPS
            await eventually(lambda: slow_dns.in_flight() >= 4, within=5, what="alpha's lookups")
            port = httpx.URL(receiver.url).port
            await ready("beta", f"http://fast.test:{port}/hook")
            started = time.perf_counter()
            assert await worker.run_once() == 1
            await eventually(lambda: receiver.deliveries, within=3, what="beta's delivery")
            took = time.perf_counter() - started
            assert took < QUICK_S, f"beta's delivery took {took:.2f} s behind alpha's lookups"
            assert slow_dns.in_flight() == _per_tenant_share()
        finally:
            slow_dns.gate.set()
            await worker.drain()
            await worker.aclose()

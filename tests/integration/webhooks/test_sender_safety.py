"""Send-time safety: the SSRF re-check, connecting to the checked address (plain and TLS),
no proxies, no cookies between receivers, and a bad secret stopping the delivery."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.integration.webhooks.conftest import Receiver, TlsReceiver
from tests.support.webhooks import FakeDns, send_ready
from visgate.webhooks.sender import new_delivery_client


async def test_a_private_target_is_refused_at_send_time_and_never_contacted(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    """The operator turned WEBHOOK_ALLOW_PRIVATE_URLS off after the deployment was made."""
    attempt = await send_ready(client, receiver.url("/ok"), secret, allow_private=False)
    assert not attempt.ok and attempt.status_code is None
    error = attempt.error or ""
    assert error.startswith("refused:") and "private, loopback or link-local address" in error
    assert "127.0.0.1" not in error
    assert attempt.disable  # an address literal will never become public
    assert receiver.requests == []


async def test_a_name_that_now_resolves_privately_is_refused_but_retried_later(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    """DNS changed after the POST-time check (rebinding): the send-time check catches it."""
    fake_dns.zone["hooks.example.com"] = ["127.0.0.1"]
    attempt = await send_ready(
        client,
        f"http://hooks.example.com:{receiver.port}/ok",
        secret,
        allow_private=False,
        resolver=fake_dns,
    )
    error = attempt.error or ""
    assert not attempt.ok and "resolves to a private, loopback or link-local address" in error
    assert "127.0.0.1" not in error  # the delivery log never shows the internal address
    assert not attempt.disable
    assert receiver.requests == []


async def test_the_connection_goes_to_the_checked_address_under_the_real_host_name(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    """`hooks.test` exists only in the fake resolver: reaching the receiver proves the sender
    connected to the address it checked, not to a second, unchecked lookup."""
    attempt = await send_ready(
        client, f"http://hooks.test:{receiver.port}/ok", secret, resolver=fake_dns
    )
    assert attempt.ok, attempt.error
    (got,) = receiver.requests
    assert got.headers["host"] == f"hooks.test:{receiver.port}"
    assert fake_dns.asked == [("hooks.test", receiver.port)]


async def test_a_refused_address_falls_through_to_the_next_checked_one(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    attempt = await send_ready(
        client, f"http://two-addresses.test:{receiver.port}/ok", secret, resolver=fake_dns
    )
    assert attempt.ok, attempt.error
    assert len(receiver.requests) == 1


async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_host_name(
    tls_receiver: TlsReceiver, secret: str, fake_dns: FakeDns
) -> None:
    """Real TLS: the connection goes to the checked address, and the certificate is still
    checked against the URL's host name (a certificate for another name is refused)."""
    trust = ssl.create_default_context(cafile=str(tls_receiver.ca_file))
    async with httpx.AsyncClient(verify=trust, trust_env=False) as client:
        good = await send_ready(
            client, f"https://hooks.test:{tls_receiver.port}/ok", secret, resolver=fake_dns
        )
        impostor = await send_ready(
            client, f"https://impostor.test:{tls_receiver.port}/ok", secret, resolver=fake_dns
        )
    assert good.ok, good.error
    assert not impostor.ok and "certificate" in (impostor.error or "").lower()
    assert len(tls_receiver.receiver.requests) == 1


async def test_https_is_pinned_with_the_host_name_kept_for_tls(
    secret: str, fake_dns: FakeDns
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        for _ in range(2):
            attempt = await send_ready(
                client,
                "https://hooks.example.com/visgate?x=1",
                secret,
                allow_private=False,
                resolver=fake_dns,
            )
            assert attempt.ok
    first, second = seen
    assert str(first.url) == "https://93.184.216.34/visgate?x=1"
    assert first.headers["host"] == "hooks.example.com"
    assert first.extensions["sni_hostname"] == "hooks.example.com"
    assert first.headers["connection"] == "close"
    assert "cookie" not in second.headers  # nothing carried from one answer to the next


async def test_a_malformed_secret_stops_the_delivery(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    attempt = await send_ready(client, receiver.url("/ok"), "whsec_")
    assert not attempt.ok and attempt.disable and (attempt.error or "").startswith("cannot sign")
    assert receiver.requests == []


async def test_the_delivery_client_ignores_proxies_from_the_environment(
    receiver: Receiver, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve names itself and bypass the address check."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with new_delivery_client() as client:
        attempt = await send_ready(client, receiver.url("/ok"), secret)
    assert attempt.ok, attempt.error
    assert receiver.requests[0].headers["user-agent"] == "visgate-webhooks/1"

"""Send-time safety: the SSRF re-check, connecting to the checked address (plain and TLS),
no proxies, no cookies between receivers, and a bad secret stopping the delivery."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.integration.webhooks.conftest import Receiver, TlsReceiver
from tests.support.webhooks import FakeDns, ready_event
from visgate.webhooks.sender import deliver_once, new_delivery_client


async def test_a_private_target_is_refused_at_send_time_and_never_contacted(
    client: httpx.AsyncClient, receiver: Receiver, secret: str
) -> None:
    """The operator turned WEBHOOK_ALLOW_PRIVATE_URLS off after the deployment was made."""
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=receiver.url("/ok"),
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=False,
    )
    assert not attempt.ok and attempt.status_code is None
    assert (attempt.error or "").startswith("refused:") and "loopback" in (attempt.error or "")
    assert attempt.disable  # an address literal will never become public
    assert receiver.requests == []


async def test_a_name_that_now_resolves_privately_is_refused_but_retried_later(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    """DNS changed after the POST-time check (rebinding): the send-time check catches it."""
    fake_dns.zone["hooks.example.com"] = ["127.0.0.1"]
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=f"http://hooks.example.com:{receiver.port}/ok",
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=False,
        resolver=fake_dns,
    )
    assert not attempt.ok and "resolves to loopback" in (attempt.error or "")
    assert not attempt.disable
    assert receiver.requests == []


async def test_the_connection_goes_to_the_checked_address_under_the_real_host_name(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    """`hooks.test` exists only in the fake resolver: reaching the receiver proves the sender
    connected to the address it checked, not to a second, unchecked lookup."""
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=f"http://hooks.test:{receiver.port}/ok",
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=True,
        resolver=fake_dns,
    )
    assert attempt.ok, attempt.error
    (got,) = receiver.requests
    assert got.headers["host"] == f"hooks.test:{receiver.port}"
    assert fake_dns.asked == [("hooks.test", receiver.port)]


async def test_a_refused_address_falls_through_to_the_next_checked_one(
    client: httpx.AsyncClient, receiver: Receiver, secret: str, fake_dns: FakeDns
) -> None:
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=f"http://two-addresses.test:{receiver.port}/ok",
        secret=secret,
        msg_id=msg_id,
        body=body,
        allow_private=True,
        resolver=fake_dns,
    )
    assert attempt.ok, attempt.error
    assert len(receiver.requests) == 1


async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_host_name(
    tls_receiver: TlsReceiver, secret: str, fake_dns: FakeDns
) -> None:
    """Real TLS: the connection goes to the checked address, and the certificate is still
    checked against the URL's host name (a certificate for another name is refused)."""
    msg_id, body = ready_event()
    trust = ssl.create_default_context(cafile=str(tls_receiver.ca_file))
    async with httpx.AsyncClient(verify=trust, trust_env=False) as client:
        good = await deliver_once(
            client,
            url=f"https://hooks.test:{tls_receiver.port}/ok",
            secret=secret,
            msg_id=msg_id,
            body=body,
            allow_private=True,
            resolver=fake_dns,
        )
        impostor = await deliver_once(
            client,
            url=f"https://impostor.test:{tls_receiver.port}/ok",
            secret=secret,
            msg_id=msg_id,
            body=body,
            allow_private=True,
            resolver=fake_dns,
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

    msg_id, body = ready_event()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        for _ in range(2):
            attempt = await deliver_once(
                client,
                url="https://hooks.example.com/visgate?x=1",
                secret=secret,
                msg_id=msg_id,
                body=body,
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
    msg_id, body = ready_event()
    attempt = await deliver_once(
        client,
        url=receiver.url("/ok"),
        secret="whsec_",
        msg_id=msg_id,
        body=body,
        allow_private=True,
    )
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
    msg_id, body = ready_event()
    async with new_delivery_client() as client:
        attempt = await deliver_once(
            client,
            url=receiver.url("/ok"),
            secret=secret,
            msg_id=msg_id,
            body=body,
            allow_private=True,
        )
    assert attempt.ok, attempt.error
    assert receiver.requests[0].headers["user-agent"] == "visgate-webhooks/1"

"""SSRF: with WEBHOOK_ALLOW_PRIVATE_URLS=false a webhook URL that reaches loopback, private,
link-local or metadata addresses is refused when the deployment is created (422) and again
right before every delivery attempt, which also never follows a redirect.

DNS is faked by replacing `visgate.webhooks.urls.system_resolver`, the resolver both the API
and the delivery path use when none is injected, so no test depends on real DNS. A refusal
says the target is not public without naming the address a name resolved to.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

import visgate.webhooks.urls as urls
from tests.integration.api.conftest import Api
from tests.integration.hostile.fuzzing import envelope_problem
from tests.support.receivers import webhook_receiver
from visgate.webhooks.sender import deliver_once, new_delivery_client

PUBLIC = "93.184.216.34"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes

PRIVATE_LITERALS = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://10.0.0.1/hook",
    "http://10.255.255.254:8443/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.0.1/hook",
    "http://192.168.255.254/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://100.64.0.1/hook",
    "http://localhost/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://anything.localhost/hook",
]

PRIVATE_ANSWERS = [
    ["127.0.0.1"],
    ["::1"],
    ["10.1.2.3"],
    ["172.20.0.5"],
    ["192.168.1.10"],
    ["169.254.169.254"],
    [PUBLIC, "10.0.0.7"],  # one bad answer among good ones is enough to refuse
]


NOT_PUBLIC = "a private, loopback or link-local address"


class TableDns:
    """`system_resolver` with a fixed table; records which tenant each lookup was for."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.tenants: list[str | None] = []

    async def __call__(self, host: str, port: int, *, tenant: str | None = None) -> list[str]:
        self.tenants.append(tenant)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return list(self.table[host])


def fake_dns(table: dict[str, Sequence[str]]) -> TableDns:
    return TableDns(table)


@pytest.mark.parametrize("url", PRIVATE_LITERALS)
async def test_private_literal_targets_are_refused_at_post(strict_api: Api, url: str) -> None:
    resp = await strict_api.post_deployment(user_webhook_url=url)
    assert resp.status_code == 422, resp.text
    assert envelope_problem(resp) is None
    error = resp.json()["error"]
    assert error["type"] == "ValidationError"
    assert error["fields"][0]["field"] == "user_webhook_url"
    listing = await strict_api.client.get("/v1/deployments", headers=strict_api.auth())
    assert listing.json()["items"] == []  # nothing was recorded


@pytest.mark.parametrize("answers", PRIVATE_ANSWERS, ids=lambda a: "+".join(a))
async def test_names_resolving_private_are_refused_at_post(
    strict_api: Api, monkeypatch: pytest.MonkeyPatch, answers: list[str]
) -> None:
    dns = fake_dns({"hooks.example.com": answers})
    monkeypatch.setattr(urls, "system_resolver", dns)
    resp = await strict_api.post_deployment(user_webhook_url="https://hooks.example.com/in")
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["fields"][0]["field"] == "user_webhook_url"
    # The caller learns that the target is not public, not what our network looks like.
    assert NOT_PUBLIC in error["message"] and NOT_PUBLIC in error["fields"][0]["message"]
    for address in answers:
        if address != PUBLIC:
            assert address not in resp.text
    assert dns.tenants == [strict_api.keys["alice"].tenant]  # the caller's share of the pool


@pytest.mark.parametrize("url", PRIVATE_LITERALS)
async def test_refusals_of_literals_name_no_address_category(strict_api: Api, url: str) -> None:
    """One wording for every forbidden kind of address, literal or resolved."""
    resp = await strict_api.post_deployment(user_webhook_url=url)
    assert resp.status_code == 422, resp.text
    assert NOT_PUBLIC in resp.json()["error"]["fields"][0]["message"]
    for leak in ("metadata address", "resolves to private", "shared (CGNAT)", "embedded in"):
        assert leak not in resp.text


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
@pytest.mark.parametrize("host", ["93.184.215.14", "hooks.example.com"])
async def test_a_port_outside_1_to_65535_is_refused_at_post(
    strict_api: Api, monkeypatch: pytest.MonkeyPatch, host: str, port: str
) -> None:
    """httpx reads these ports; only the socket, at send time, would have refused them."""
    monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": [PUBLIC]}))
    resp = await strict_api.post_deployment(user_webhook_url=f"https://{host}:{port}/h")
    assert resp.status_code == 422, resp.text
    (field,) = resp.json()["error"]["fields"]
    assert field["field"] == "user_webhook_url"
    assert field["message"] == f"has a port outside 1-65535 ({int(port)})"
    listing = await strict_api.client.get("/v1/deployments", headers=strict_api.auth())
    assert listing.json()["items"] == []


async def test_a_port_outside_1_to_65535_is_refused_even_when_private_urls_are_allowed(
    api: Api,
) -> None:
    resp = await api.post_deployment(user_webhook_url="http://127.0.0.1:70000/h")
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["fields"][0]["field"] == "user_webhook_url"


async def test_a_public_name_is_accepted_at_post(
    strict_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the refusals above: the guard does not refuse everything."""
    monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": [PUBLIC]}))
    resp = await strict_api.post_deployment(user_webhook_url="https://hooks.example.com/in")
    assert resp.status_code == 202, resp.text
    assert resp.json()["webhook_url"] == "https://hooks.example.com/in"


async def test_unresolvable_name_is_refused_at_post(
    strict_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urls, "system_resolver", fake_dns({}))
    resp = await strict_api.post_deployment(user_webhook_url="https://nowhere.example.com/in")
    assert resp.status_code == 422
    assert "resolve" in resp.json()["error"]["message"]


async def _deliver(url: str, client: httpx.AsyncClient | None = None, **kw: object) -> object:
    own = client is None
    client = client or new_delivery_client()
    try:
        return await deliver_once(
            client,
            url=url,
            secret=SECRET,
            msg_id="msg_hostile",
            body=b'{"type":"deployment.ready"}',
            timeout=5.0,
            **kw,  # type: ignore[arg-type]
        )
    finally:
        if own:
            await client.aclose()


async def test_delivery_refuses_a_name_that_now_resolves_to_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Accepted at POST while public; by delivery time its DNS points at this machine."""
    with webhook_receiver() as receiver:
        port = httpx.URL(receiver.url).port
        url = f"http://hooks.example.com:{port}/hook"
        monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": [PUBLIC]}))
        await urls.check_webhook_url(url, allow_private=False)  # what POST checks
        monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": ["127.0.0.1"]}))
        attempt = await _deliver(url, allow_private=False)
        assert attempt.ok is False  # type: ignore[attr-defined]
        assert attempt.status_code is None  # type: ignore[attr-defined]
        assert attempt.error.startswith("refused")  # type: ignore[attr-defined]
        assert NOT_PUBLIC in attempt.error  # type: ignore[attr-defined]
        assert "127.0.0.1" not in attempt.error  # type: ignore[attr-defined]  # the user reads it
        assert attempt.disable is False  # type: ignore[attr-defined]  # DNS may change back
        # Control: with private targets allowed the same URL reaches the receiver, so the
        # refusal above is the guard, not a dead receiver.
        allowed = await _deliver(url, allow_private=True)
        assert allowed.ok is True  # type: ignore[attr-defined]
        assert len(receiver.deliveries) == 1


async def test_delivery_to_a_private_literal_is_refused_for_good() -> None:
    with webhook_receiver() as receiver:
        attempt = await _deliver(receiver.url, allow_private=False)
        assert attempt.ok is False  # type: ignore[attr-defined]
        assert attempt.disable is True  # type: ignore[attr-defined]  # an IP never changes
        assert receiver.deliveries == []


async def test_delivery_never_follows_a_redirect_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A public receiver answering 302 to the metadata server or loopback is not followed,
    even by a client configured to follow redirects."""
    seen: list[httpx.Request] = []

    def public_receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/"})

    monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": [PUBLIC]}))
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(public_receiver), follow_redirects=True
    )
    async with client:
        attempt = await _deliver("http://hooks.example.com/hook", client, allow_private=False)
    assert attempt.ok is False  # type: ignore[attr-defined]
    assert attempt.status_code == 302  # type: ignore[attr-defined]
    assert "not followed" in attempt.error  # type: ignore[attr-defined]
    assert len(seen) == 1
    # Sent to the checked address (no second lookup), naming the real host.
    assert seen[0].url.host == PUBLIC
    assert seen[0].headers["host"] == "hooks.example.com"


async def test_delivery_redirect_to_loopback_receiver_never_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same as above with a real loopback receiver as the redirect target: any request not
    for the public address goes over a real socket, so a followed redirect would land."""
    with webhook_receiver() as receiver:
        real = httpx.AsyncHTTPTransport()

        async def network(request: httpx.Request) -> httpx.Response:
            if request.url.host == PUBLIC:
                return httpx.Response(307, headers={"location": receiver.url})
            return await real.handle_async_request(request)

        monkeypatch.setattr(urls, "system_resolver", fake_dns({"hooks.example.com": [PUBLIC]}))
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(network), follow_redirects=True
        ) as client:
            attempt = await _deliver("http://hooks.example.com/hook", client, allow_private=False)
            # Control: this client does reach the receiver when asked directly.
            direct = await client.post(receiver.url, content=b"{}")
        await real.aclose()
        assert attempt.status_code == 307  # type: ignore[attr-defined]
        assert attempt.ok is False  # type: ignore[attr-defined]
        assert direct.status_code == 204
        assert len(receiver.deliveries) == 1  # only the control request
        assert receiver.deliveries[0].body == b"{}"

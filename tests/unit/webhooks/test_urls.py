"""The SSRF guard: which webhook URLs are refused at POST time and before every attempt."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from structlog.testing import capture_logs

from tests.support.webhooks import FakeDns
from visgate.domain.errors import ValidationError
from visgate.webhooks import urls
from visgate.webhooks.urls import (
    check_webhook_url,
    refusal_is_final,
    resolve_safe_target,
    validate_webhook_url_syntax,
)

# One wording for every forbidden kind of address, with no address in it.
NOT_PUBLIC = "a private, loopback or link-local address"

PRIVATE_LITERALS = [
    "http://127.0.0.1/hook",
    "http://127.9.8.7:8080/hook",
    "http://[::1]/hook",
    "http://10.0.0.1/hook",
    "http://10.255.255.254/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.1.20/hook",
    "http://169.254.169.254/computeMetadata/v1/",
    "http://169.254.10.10/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[::ffff:10.1.1.1]/hook",
    "http://100.64.0.1/hook",
    "http://100.127.255.254/hook",
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://240.0.0.1/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 wrapping 169.254.169.254
    # Legacy IPv4 spellings that getaddrinfo reads as 127.0.0.1:
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f.0.0.1/hook",
    "http://017700000001/hook",
]

PRIVATE_NAMES = [
    "http://localhost:8080/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
]

MALFORMED = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "not a url",
    "http://",
    "https:///path-only",
    "http://user:password@hooks.example.com/hook",
    "http://token@hooks.example.com/hook",
    "http://exa mple.com/hook",
    "http://256.256.256.256.1/hook",
    # Ports httpx reads but no socket can connect to:
    "https://hooks.example.com:0/hook",
    "https://hooks.example.com:65536/hook",
    "https://93.184.215.14:99999/h",
]

RESOLVING_PRIVATELY = [
    ("http://internal.example.com/hook", "10.0.0.7"),
    ("http://mixed.example.com/hook", "127.0.0.1"),  # one bad answer among good ones
    ("http://loopback6.example.com/hook", "::1"),
    ("http://mapped.example.com/hook", "127.0.0.1"),  # ::ffff:127.0.0.1
    ("http://metadata-alias.example.com/hook", "169.254.169.254"),
    ("http://cgnat.example.com/hook", "100.64.12.1"),
    ("https://ula.example.com/hook", "fd00::5"),
]

PUBLIC = [
    "https://hooks.example.com/visgate?tenant=7",
    "http://hooks.example.com:8080/hook",
    "https://v6.example.com/hook",
    "https://bücher.example/hook",
    "http://93.184.216.34/hook",
    "https://[2606:4700:4700::1111]/hook",
    "http://[::ffff:8.8.8.8]/hook",
    "http://172.32.0.1/hook",  # just outside 172.16/12
    "http://hooks.example.com:1/hook",
    "https://hooks.example.com:65535/hook",
]


def _field_message(exc: ValidationError) -> str:
    assert exc.status_code == 422
    assert len(exc.fields) == 1 and exc.fields[0]["field"] == "user_webhook_url"
    return str(exc.fields[0]["message"])


@pytest.mark.parametrize("url", PRIVATE_LITERALS)
async def test_private_address_literals_are_refused(url: str, fake_dns: FakeDns) -> None:
    with pytest.raises(ValidationError) as caught:
        await check_webhook_url(url, allow_private=False, resolver=fake_dns)
    message = _field_message(caught.value)
    assert message == f"points at {NOT_PUBLIC}; only public addresses are allowed"
    assert fake_dns.asked == []  # an address needs no DNS
    assert refusal_is_final(url)


@pytest.mark.parametrize("url", PRIVATE_NAMES)
async def test_local_and_metadata_names_are_refused_without_dns(
    url: str, fake_dns: FakeDns
) -> None:
    with pytest.raises(ValidationError) as caught:
        await check_webhook_url(url, allow_private=False, resolver=fake_dns)
    assert "this machine or its metadata service" in _field_message(caught.value)
    assert fake_dns.asked == []


@pytest.mark.parametrize("url", MALFORMED)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_malformed_urls_are_refused(url: str, allow_private: bool, fake_dns: FakeDns) -> None:
    with pytest.raises(ValidationError) as caught:
        await check_webhook_url(url, allow_private=allow_private, resolver=fake_dns)
    _field_message(caught.value)
    with pytest.raises(ValidationError):
        validate_webhook_url_syntax(url)
    assert refusal_is_final(url)


async def test_credentials_in_the_url_are_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="credentials"):
        await check_webhook_url("https://u:p@hooks.example.com/", allow_private=True)


@pytest.mark.parametrize(("url", "address"), RESOLVING_PRIVATELY)
async def test_names_resolving_to_private_addresses_are_refused(
    url: str, address: str, fake_dns: FakeDns
) -> None:
    with pytest.raises(ValidationError) as caught:
        await check_webhook_url(url, allow_private=False, resolver=fake_dns)
    message = _field_message(caught.value)
    assert f"resolves to {NOT_PUBLIC}" in message
    # Which internal address a name resolves to is ours to know, not the caller's.
    assert address not in message and address not in caught.value.message
    assert not refusal_is_final(url)  # DNS may say otherwise by the next attempt


async def test_the_detailed_reason_goes_to_the_server_log_only(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    with capture_logs() as logs, pytest.raises(ValidationError) as caught:
        # A fresh logger: the module's own may already be bound (cached) by an earlier test,
        # and a cached logger writes past capture_logs.
        monkeypatch.setattr(urls, "log", structlog.get_logger(urls.__name__))
        await check_webhook_url(
            "https://metadata-alias.example.com/hook",
            allow_private=False,
            resolver=fake_dns,
            tenant="t1",
        )
    assert "169.254.169.254" not in str(caught.value.to_dict())
    (line,) = [e for e in logs if e["event"] == "webhook_target_refused"]
    assert line["address"] == "169.254.169.254" and "metadata" in line["reason"]
    assert line["tenant"] == "t1" and line["log_level"] == "info"


@pytest.mark.parametrize("port", ["0", "65536", "99999", "4294967297"])
async def test_a_port_outside_1_to_65535_is_refused_as_final(port: str) -> None:
    url = f"https://93.184.215.14:{port}/h"
    with pytest.raises(ValidationError) as caught:
        await check_webhook_url(url, allow_private=False)
    assert _field_message(caught.value) == f"has a port outside 1-65535 ({int(port)})"
    with pytest.raises(ValidationError, match="port outside"):
        validate_webhook_url_syntax(url)
    assert refusal_is_final(url)  # a stored URL like this is disabled at delivery


@pytest.mark.parametrize("url", PUBLIC)
async def test_public_targets_are_accepted(url: str, fake_dns: FakeDns) -> None:
    await check_webhook_url(url, allow_private=False, resolver=fake_dns)


async def test_idn_host_is_resolved_in_its_ascii_form(fake_dns: FakeDns) -> None:
    target = await resolve_safe_target(
        "https://Bücher.example/hook", allow_private=False, resolver=fake_dns
    )
    assert fake_dns.asked == [("xn--bcher-kva.example", 443)]
    assert target.host == "xn--bcher-kva.example"
    assert target.addresses == ("93.184.216.35",)


async def test_unresolvable_host_is_refused(fake_dns: FakeDns) -> None:
    with pytest.raises(ValidationError, match="does not resolve"):
        await check_webhook_url("https://nope.example.com/", allow_private=False, resolver=fake_dns)


async def test_a_hanging_resolver_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()  # never answers
        return ["93.184.216.34"]

    monkeypatch.setattr(urls, "RESOLVE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(ValidationError, match="did not resolve in time"):
        await check_webhook_url("https://slow.example.com/", allow_private=False, resolver=hangs)


@pytest.mark.parametrize(
    "url", PRIVATE_LITERALS[:5] + PRIVATE_NAMES + ["http://internal.example.com/"]
)
async def test_allow_private_accepts_private_targets_without_dns(url: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("check_webhook_url must not resolve when private targets are allowed")

    await check_webhook_url(url, allow_private=True, resolver=no_dns)


async def test_resolve_safe_target_returns_the_checked_addresses_in_order(
    fake_dns: FakeDns,
) -> None:
    fake_dns.zone["dup.example.com"] = ["93.184.216.34", "93.184.216.34", "2606:4700::1"]
    target = await resolve_safe_target(
        "http://dup.example.com:8080/x", allow_private=False, resolver=fake_dns
    )
    assert target.addresses == ("93.184.216.34", "2606:4700::1")
    assert (target.host, target.port, target.is_ip_literal) == ("dup.example.com", 8080, False)


async def test_legacy_ipv4_spelling_is_read_as_the_address_it_means() -> None:
    target = await resolve_safe_target("http://127.1:9000/", allow_private=True)
    assert target.addresses == ("127.0.0.1",) and target.is_ip_literal


async def test_system_resolver_reads_the_hosts_file() -> None:
    target = await resolve_safe_target("http://localhost:9/", allow_private=True)
    assert "127.0.0.1" in target.addresses or "::1" in target.addresses


def test_syntax_check_is_shape_only_and_returns_the_url_as_sent() -> None:
    assert (
        validate_webhook_url_syntax(" https://Hooks.Example.com/a?b=1 ")
        == "https://hooks.example.com/a?b=1"
    )
    # Address policy needs settings (allow_private), so the shape check lets this through.
    assert validate_webhook_url_syntax("http://10.0.0.1/x") == "http://10.0.0.1/x"

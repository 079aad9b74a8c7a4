"""Which webhook URLs we are willing to call: the SSRF guard.

A user-supplied URL must not turn the control plane into a proxy into its own network
(the cloud metadata server at 169.254.169.254, loopback admin ports, the VPC). The check
runs twice: when the deployment is created (`check_webhook_url`, a clear 422) and again
right before every attempt (`resolve_safe_target`), because DNS answers can change between
the two. The sender connects to the very addresses that were checked, so a name that
resolves to a public address for the check and a private one for the connection (DNS
rebinding) cannot slip through. URLs are parsed with httpx's parser, the one that sends,
so the check and the request cannot read a URL differently.

A refusal says which URL part is wrong but never which address a name resolved to: the
caller (and the user reading the delivery log) learns that the target is not public, not
what our internal network looks like. The category and address go to the server log.
Lookups run on the webhook lookup pool (`resolver.py`) within the tenant's share of it, so
one tenant's slow DNS cannot hold up anyone else's checks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

import httpx
import structlog

from visgate.domain.errors import ValidationError
from visgate.webhooks import resolver as lookup_pool

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the host's addresses as text; injectable so tests need no DNS.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

FIELD: Final = "user_webhook_url"
RESOLVE_TIMEOUT_SECONDS: Final = 5.0  # waiting for a lookup slot included
NOT_PUBLIC: Final = "a private, loopback or link-local address"
_ONLY_PUBLIC: Final = "only public addresses are allowed"
_PORTS: Final = range(1, 65536)
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA_IPS: Final = {
    ipaddress.IPv4Address("169.254.169.254"),
    ipaddress.IPv6Address("fd00:ec2::254"),
}
# Names that mean "this machine" or "the cloud's metadata server" without asking DNS.
_LOCAL_NAMES: Final = {"localhost", "metadata", "metadata.google.internal"}
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


@dataclass(frozen=True)
class SafeTarget:
    """A checked URL and the addresses it may be sent to (all of them allowed)."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host name or IP literal, without brackets
    port: int
    addresses: tuple[str, ...]
    is_ip_literal: bool


def _refuse(message: str) -> ValidationError:
    return ValidationError(
        f"user_webhook_url {message}", fields=[{"field": FIELD, "message": message}]
    )


def forbidden_reason(address: IPAddress) -> str | None:
    """Why this address must not be called, or None when it is publicly routable."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            return forbidden_reason(address.ipv4_mapped)
        embedded = address.sixtofour or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None and (reason := forbidden_reason(embedded)):
            return f"{reason} (embedded in {address})"
    if address in _METADATA_IPS:
        return f"cloud metadata address {address}"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not publicly routable"),
    )
    for hit, label in checks:
        if hit:
            return f"{label} address {address}"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host names by itself, reading legacy IPv4 forms as the resolver would.

    `127.1`, `0x7f.0.0.1` and `2130706433` all mean 127.0.0.1 to getaddrinfo; reading them
    here keeps the check independent of the resolver (and of a test's fake one).
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    last_label = host.rstrip(".").rsplit(".", 1)[-1].lower()
    numeric = last_label.isdigit() or (
        last_label.startswith("0x") and all(c in "0123456789abcdef" for c in last_label[2:])
    )
    if not numeric:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        raise _refuse(f"has a malformed numeric host {host!r}") from None


def _parse(url: str) -> tuple[httpx.URL, str, int, IPAddress | None]:
    text = url.strip()
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise _refuse("is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise _refuse("must be an http:// or https:// URL")
    if not parsed.raw_host:
        raise _refuse("has no host")
    if parsed.userinfo:
        # It would be stored and echoed back in API answers; sign-and-verify replaces it.
        raise _refuse("must not contain credentials (user:password@)")
    host = parsed.raw_host.decode("ascii").lower()
    if parsed.port is not None and parsed.port not in _PORTS:
        # httpx reads any digits as a port; the socket would fail on it at send time.
        raise _refuse(f"has a port outside 1-65535 ({parsed.port})")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = _ip_literal(host)
    if literal is None and not _HOST_NAME.fullmatch(host):
        raise _refuse(f"has an invalid host name {host!r}")
    return parsed, host, port, literal


def validate_webhook_url_syntax(url: str) -> str:
    """Shape-only check for request validation (no DNS, no address policy): the URL as sent."""
    parsed, _, _, _ = _parse(url)
    return str(parsed)


def _check_name(host: str) -> None:
    name = host.rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise _refuse(
            f"points at {name!r}, which is this machine or its metadata service"
            f" ({NOT_PUBLIC}); {_ONLY_PUBLIC}"
        )


def _not_public(
    what: str, host: str, address: IPAddress, reason: str, tenant: str | None
) -> NoReturn:
    """Log the detailed reason for us; the caller learns only that the target is not public."""
    log.info(
        "webhook_target_refused", host=host, address=str(address), reason=reason, tenant=tenant
    )
    raise _refuse(f"{what} {NOT_PUBLIC}; {_ONLY_PUBLIC}")


def _check_addresses(host: str, addresses: Sequence[str], tenant: str | None) -> tuple[str, ...]:
    if not addresses:
        raise _refuse(f"host {host!r} has no address")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise _refuse(f"host {host!r} resolved to a malformed address") from None
        if reason := forbidden_reason(address):
            _not_public(f"host {host!r} resolves to", host, address, reason, tenant)
    return tuple(dict.fromkeys(addresses))


async def system_resolver(host: str, port: int, *, tenant: str | None = None) -> list[str]:
    """The OS resolver on the webhook lookup pool, within `tenant`'s share of its threads."""
    return await lookup_pool.shared_pool().resolve(host, port, tenant=tenant)


async def _resolve(
    host: str, port: int, resolver: Resolver | None, tenant: str | None
) -> Sequence[str]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            if resolver is not None:
                return await resolver(host, port)
            return await system_resolver(host, port, tenant=tenant)
    except TimeoutError:
        log.info("webhook_lookup_timed_out", host=host, tenant=tenant)
        raise _refuse(f"host {host!r} did not resolve in time") from None
    except OSError:
        raise _refuse(f"host {host!r} does not resolve") from None


async def resolve_safe_target(
    url: str, *, allow_private: bool, resolver: Resolver | None = None, tenant: str | None = None
) -> SafeTarget:
    """Parse, resolve and check a webhook URL right before sending to it.

    Every address the name resolves to must be allowed (an attacker controls the order of
    the answers). With `allow_private` (local runs, tests) any address passes. The lookup
    counts against `tenant`'s share of the lookup pool. Raises `ValidationError` naming the
    field and the reason.
    """
    parsed, host, port, literal = _parse(url)
    if literal is not None:
        if not allow_private and (reason := forbidden_reason(literal)):
            _not_public("points at", host, literal, reason, tenant)
        address = literal.compressed
        return SafeTarget(parsed, address, port, (address,), is_ip_literal=True)
    if not allow_private:
        _check_name(host)
    resolved = await _resolve(host, port, resolver, tenant)
    if allow_private:
        if not resolved:
            raise _refuse(f"host {host!r} has no address")
        addresses = tuple(dict.fromkeys(resolved))
    else:
        addresses = _check_addresses(host, resolved, tenant)
    return SafeTarget(parsed, host, port, addresses, is_ip_literal=False)


async def check_webhook_url(
    url: str, *, allow_private: bool, resolver: Resolver | None = None, tenant: str | None = None
) -> None:
    """Refuse (422) a webhook URL we would never call, when the deployment is created.

    With `allow_private` only the shape is checked (no DNS): local runs must not depend on a
    resolver. Delivery checks again, since the name may resolve elsewhere by then.
    """
    if allow_private:
        _parse(url)
        return
    await resolve_safe_target(url, allow_private=False, resolver=resolver, tenant=tenant)


def refusal_is_final(url: str) -> bool:
    """True when a refusal of `url` cannot change with DNS: it is malformed or names an IP."""
    try:
        return _parse(url)[3] is not None
    except ValidationError:
        return True

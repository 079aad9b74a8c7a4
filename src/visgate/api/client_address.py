"""The caller's address, read from `X-Forwarded-For` only as far as our own proxies wrote it.

A proxy appends the address it received the request from; it never replaces what the
caller already put in the header. So the leftmost entries are whatever the caller wrote,
and only the last `hops` entries (one per proxy the operator deploys behind: Google's
front end on Cloud Run) come from machines we trust. The client is the entry `hops` from
the right. Limits keyed by address (unknown API keys per address) therefore cannot be
escaped by writing a new address into the header on every request.

The connecting peer's own address stays in the request state as `peer`: `/metrics` asks
whether the scraper is on this machine, which a forwarded entry must never answer.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

_SCHEMES = frozenset({"http", "https"})


def _address(entry: str) -> str | None:
    """The IP address of one `X-Forwarded-For` entry (`a.b.c.d`, `a.b.c.d:port`, an IPv6
    address with or without brackets and port); None when it is not an address."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def forwarded_client(header: str, hops: int) -> str | None:
    """The client address a chain of `hops` trusted proxies reports in `header`, or None
    when the header holds no usable entry there. With fewer entries than hops, the first
    one was written by the nearest of our proxies that saw the request."""
    entries = [e for e in header.split(",") if e.strip()]
    if hops <= 0 or not entries:
        return None
    return _address(entries[max(0, len(entries) - hops)])


class ClientAddressMiddleware:
    """Sets the request's client address (and scheme) from the trusted proxy hops."""

    def __init__(self, app: ASGIApp, *, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        scope.setdefault("state", {})["peer"] = peer[0] if peer else None
        if self.hops > 0:
            forwarded: list[bytes] = []
            proto = b""
            for name, value in scope.get("headers") or ():
                if name == b"x-forwarded-for":
                    forwarded.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value
            host = forwarded_client(b",".join(forwarded).decode("latin-1"), self.hops)
            if host is not None:
                scope["client"] = (host, 0)
            scheme = proto.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
            if scheme in _SCHEMES:
                scope["scheme"] = scheme
        await self.app(scope, receive, send)

"""Which `X-Forwarded-For` entry is the client: the one our own proxies wrote, counted from
the right, never what the caller put in front of it."""

from __future__ import annotations

import pytest

from visgate.api.client_address import forwarded_client


@pytest.mark.parametrize(
    ("header", "hops", "client"),
    [
        ("203.0.113.7", 1, "203.0.113.7"),  # Cloud Run: the front end's own entry
        ("1.2.3.4, 203.0.113.7", 1, "203.0.113.7"),  # the caller's forged entry is skipped
        ("1.2.3.4,5.6.7.8, 203.0.113.7", 1, "203.0.113.7"),
        ("1.2.3.4, 203.0.113.7, 34.120.0.1", 2, "203.0.113.7"),  # behind a load balancer too
        ("203.0.113.7", 2, "203.0.113.7"),  # fewer entries than hops: the nearest one's
        ("203.0.113.7:5123", 1, "203.0.113.7"),
        ("[2001:db8::1]:443", 1, "2001:db8::1"),
        ("2001:db8:0:0::1", 1, "2001:db8::1"),
        ("1.2.3.4, not-an-address", 1, None),  # unusable: the peer address stands
        ("", 1, None),
        ("203.0.113.7", 0, None),  # nothing in front: the header is the caller's own
    ],
)
def test_the_client_is_the_entry_our_proxies_wrote(
    header: str, hops: int, client: str | None
) -> None:
    assert forwarded_client(header, hops) == client

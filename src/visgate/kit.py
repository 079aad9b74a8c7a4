"""Small helpers every layer shares: wire timestamps and `Retry-After` headers.

A top-level module that imports nothing of ours, so the domain, the providers, the API and
the CLI may all use it.

Times are epoch seconds inside and RFC 3339 UTC strings on the wire. `Retry-After` is read
for every outbound HTTP client (Runpod, the Hugging Face hub, user webhook receivers): RFC
9110 allows delay-seconds or an HTTP date, and servers send both.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def iso(ts: float | None) -> str | None:
    """RFC 3339 in UTC, always with microseconds: a whole second keeps its `.000000`, so
    the strings sort as the instants do and one parse format fits every value."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch(text: str | None) -> float | None:
    """Epoch seconds of a wire time (`iso`'s output, or any ISO 8601 with a zone); None for
    anything else."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delay-seconds or an HTTP date, counted from
    `now`, default the current time); None for anything else."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # RFC 9110 delay-seconds: 1*DIGIT
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    start = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - start)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`{"Retry-After": "<whole seconds>"}` for a public error, or {} when there is no hint."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(0, math.ceil(seconds)))}

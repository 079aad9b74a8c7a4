"""`Retry-After` header values in seconds, shared by every outbound HTTP client (Runpod, the
Hugging Face hub): RFC 9110 allows delta-seconds or an HTTP date, and servers send both.

It lives at the root of `providers` (beside the protocol, no backend imports) so the hub
layer can use it without importing a provider backend.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`{"Retry-After": "<whole seconds>"}` for a public error, or {} when there is no hint."""
    if seconds is None:
        return {}
    return {"Retry-After": str(max(0, math.ceil(seconds)))}

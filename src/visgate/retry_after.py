"""`Retry-After` header values in seconds, for every outbound HTTP client (Runpod, the
Hugging Face hub, user webhook receivers): RFC 9110 allows delay-seconds or an HTTP date,
and servers send both. A top-level module that imports nothing of ours, so any layer may
use it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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

"""Standard Webhooks signatures (https://www.standardwebhooks.com), both ends.

The sender signs `"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256 under the
decoded `whsec_` secret; `verify_webhook` is what a receiver calls. Stdlib only, so users
can import it without the control plane's dependencies mattering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format marker, not a secret)
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300.0
_SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


class WebhookVerificationError(Exception):
    """A received webhook is not authentic or not fresh: answer it with 400 and drop it.

    Raised on the receiver's side, so it is not part of the service's error tree.
    """


def generate_secret() -> str:
    """A new per-key signing secret, shown to the user once at `visgate keys create`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    """The HMAC key: the bytes behind `whsec_<base64>` (the prefix may be left off)."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Unpadded base64 is common in copied secrets; extra padding is ignored.
        key = base64.b64decode(encoded + "==", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not `whsec_` + base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value, `v1,<base64>`, over the exact bytes that are sent."""
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        # A '.' would let one (id, timestamp) pair pass for another in the signed string.
        raise ValueError("webhook id must be non-empty, without '.' or whitespace")
    digest = _digest(_secret_key(secret), msg_id, int(timestamp), body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def build_headers(
    secret: str, msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Headers for one attempt: same `webhook-id` on every retry, a fresh timestamp each time."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def _tolerance_seconds(tolerance: timedelta | float) -> float:
    seconds = tolerance.total_seconds() if isinstance(tolerance, timedelta) else float(tolerance)
    if seconds < 0:
        raise ValueError("tolerance must be >= 0")
    return seconds


def _signatures(header: str) -> list[bytes]:
    """The `v1` signatures in a space-separated header; other versions are skipped."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: timedelta | float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a received webhook and return its JSON payload.

    Pass the raw request body (not re-serialized JSON: a stray space breaks the signature)
    and the request headers in any letter case. Several space-separated signatures are
    allowed (secret rotation); one valid `v1` entry is enough. A timestamp further than
    `tolerance` (default 5 minutes) from `now` is refused, which stops replays. Use
    `webhook-id` to drop duplicates: a retried event keeps its id.

    Raises `WebhookVerificationError` for anything not authentic or not fresh, and
    `ValueError` for a malformed `secret` (a receiver misconfiguration, not an attack).
    """
    key = _secret_key(secret)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "").strip()
    timestamp_text = lowered.get("webhook-timestamp", "").strip()
    signature_header = lowered.get("webhook-signature", "").strip()
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp_text),
            ("webhook-signature", signature_header),
        )
        if not value
    ]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    if not timestamp_text.isascii() or not timestamp_text.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not an integer unix time")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    allowed = _tolerance_seconds(tolerance)
    if timestamp < current - allowed:
        raise WebhookVerificationError("webhook-timestamp is too old (replayed or delayed)")
    if timestamp > current + allowed:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    expected = _digest(key, msg_id, timestamp, raw)
    # Compare against every candidate so the time taken does not depend on which one matched.
    matched = False
    for candidate in _signatures(signature_header):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no valid v1 signature for this secret and body")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("body is not a JSON object")
    return payload

"""Web console sessions: an API key is exchanged once for a random session token, which the
browser holds in an HttpOnly cookie; the key itself never reaches a page, a URL or browser
storage.

The store keeps only the token's SHA-256 (`ConsoleSession.id`). The CSRF token of a session is
an HMAC of its token, so it needs no storage and cannot be computed without the cookie, which
page scripts cannot read: a page carries it, and every state-changing request must send it
back (`X-CSRF-Token` from scripts, a `csrf_token` form field from plain forms).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from visgate.domain.records import ApiKey, ConsoleSession
from visgate.services import Services

SESSION_COOKIE = "visgate_session"
# Sign-in's own double-submit token: a sign-in form posted from another site must not sign a
# visitor into someone else's tenant.
SIGN_IN_COOKIE = "visgate_sign_in"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"visgate-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(token), sent or "")


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def open_session(services: Services, key: ApiKey, now: float) -> tuple[str, ConsoleSession]:
    """A new session for `key`; returns the cookie's token (shown to nobody else) and the
    record stored under its hash."""
    token = new_token()
    session = ConsoleSession(
        id=session_id(token),
        key_id=key.id,
        tenant=key.tenant,
        created_at=now,
        expires_at=now + services.settings.console_session_seconds,
    )
    return token, await services.store.console_sessions.add(session)


async def close_session(services: Services, token: str) -> None:
    await services.store.console_sessions.delete(session_id(token))

"""One webhook delivery attempt: check the target, sign, POST, and describe what happened.

The reconciler persists pending deliveries and calls `deliver_once` per attempt, so
nothing here queues, sleeps or retries. Every outcome, timeouts and refused connections
included, comes back as a `DeliveryAttempt` rather than an exception, because each one is
logged on the deployment and decides the next attempt. That holds for errors nobody
foresaw too (a socket's `OverflowError`, an `ExceptionGroup` from the connection code): an
exception escaping here would bring the delivery back with its lease forever, never logged
and never given up.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

import httpx
import structlog

from visgate.domain.errors import ValidationError
from visgate.kit import parse_retry_after
from visgate.webhooks.signing import build_headers
from visgate.webhooks.urls import Resolver, SafeTarget, refusal_is_final, resolve_safe_target

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS: Final = 15.0  # Standard Webhooks recommends 15 to 30 s
EXCERPT_BYTES: Final = 2048
USER_AGENT: Final = "visgate-webhooks/1"
_MAX_ADDRESSES_TRIED: Final = 3
_MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True)
class DeliveryAttempt:
    """What one attempt did; `ok` only for a 2xx answer."""

    attempted_at: float  # unix seconds, also the signed `webhook-timestamp`
    status_code: int | None  # None when no HTTP answer came back
    ok: bool
    duration_ms: float
    response_excerpt: str | None  # first 2 KB of the answer, for the user's delivery log
    error: str | None
    retry_after_s: float | None = None  # the receiver's Retry-After on 429/503
    disable: bool = False  # stop retrying: 410 Gone, or a target that can never be allowed


def new_delivery_client() -> httpx.AsyncClient:
    """The client to pass to `deliver_once`: one per process, shared by all attempts.

    No proxy from the environment (`trust_env=False`): a proxy would resolve names itself,
    defeating the address check, and its TLS tunnel ignores the pinned server name.
    """
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=DEFAULT_TIMEOUT_SECONDS,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )


def _describe_failure(response: httpx.Response) -> tuple[str, bool]:
    """The error text for a non-2xx answer, and whether to stop retrying."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "")[:200]
        return (
            f"HTTP {status} redirect to {location!r} not followed: webhooks are never "
            "redirected, set the final URL",
            False,
        )
    if status == 410:
        return "HTTP 410 Gone: the receiver asked us to stop sending", True
    return f"HTTP {status}", False


async def _read_excerpt(response: httpx.Response) -> str:
    """At most 2 KB of the body: a receiver cannot make us download a huge answer.

    The status line already decided the outcome, so a body cut short still counts.
    """
    buffer = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) >= EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        buffer += b" [answer cut short]"
    encoding = response.charset_encoding or "utf-8"
    try:
        return bytes(buffer[:EXCERPT_BYTES]).decode(encoding, errors="replace")
    except LookupError:
        return bytes(buffer[:EXCERPT_BYTES]).decode("utf-8", errors="replace")


def _pinned_request(
    client: httpx.AsyncClient,
    target: SafeTarget,
    address: str,
    headers: dict[str, str],
    body: bytes,
    timeout: float,
) -> httpx.Request:
    """A request that connects to `address` (already checked) while naming the real host.

    Connecting by address means a second DNS lookup, whose answer might differ (DNS
    rebinding), never happens. The Host header and TLS server name keep the original host,
    so virtual hosting and certificate checks work as usual.
    """
    secure = target.url.scheme == "https"
    request_headers = {
        **headers,
        "host": target.url.netloc.decode("ascii"),
        "user-agent": USER_AGENT,
    }
    extensions: dict[str, object] = {}
    if secure and not target.is_ip_literal:
        extensions["sni_hostname"] = target.host
        # Pooled connections are keyed by address, not name: never reuse one TLS session
        # (verified for one name) for another name that shares the address.
        request_headers["connection"] = "close"
    request = client.build_request(
        "POST",
        target.url.copy_with(host=address),
        content=body,
        headers=request_headers,
        timeout=timeout,
        extensions=extensions,
    )
    request.headers.pop("cookie", None)  # no cookies from one receiver to the next
    return request


@dataclass(frozen=True)
class _Outcome:
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    disable: bool = False


async def _post(
    client: httpx.AsyncClient,
    target: SafeTarget,
    headers: dict[str, str],
    body: bytes,
    limit_s: float,
) -> _Outcome:
    """Send to the checked addresses in turn, moving on only when a connection is refused."""
    last_error = "no address to connect to"
    for address in target.addresses[:_MAX_ADDRESSES_TRIED]:
        request = _pinned_request(client, target, address, headers, body, limit_s)
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            last_error = f"connection failed: {exc}"
            continue
        try:
            excerpt = await _read_excerpt(response)
        finally:
            await response.aclose()
        if response.is_success:
            return _Outcome(status=response.status_code, excerpt=excerpt)
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        error, disable = _describe_failure(response)
        return _Outcome(response.status_code, excerpt, error, retry_after, disable)
    return _Outcome(error=last_error)


@dataclass(frozen=True)
class _Send:
    """Where and how one attempt goes."""

    url: str
    allow_private: bool
    limit_s: float
    resolver: Resolver | None
    tenant: str | None


def _exception_types(exc: BaseException) -> str:
    """`OverflowError`, or `ExceptionGroup(OverflowError, OSError)`: types only, since an
    unforeseen exception's text may carry internal details (addresses, paths)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = ", ".join(dict.fromkeys(_exception_types(e) for e in exc.exceptions))
        return f"{type(exc).__name__}({inner})"
    return type(exc).__name__


async def _attempt(
    client: httpx.AsyncClient, send: _Send, headers: dict[str, str], body: bytes
) -> _Outcome:
    url, limit_s = send.url, send.limit_s
    try:
        async with asyncio.timeout(limit_s):
            target = await resolve_safe_target(
                url, allow_private=send.allow_private, resolver=send.resolver, tenant=send.tenant
            )
            return await _post(client, target, headers, body, limit_s)
    except ValidationError as exc:
        # A refused IP literal stays refused; a name may resolve elsewhere by the next try.
        return _Outcome(error=f"refused: {exc.message}", disable=refusal_is_final(url))
    except (TimeoutError, httpx.TimeoutException):
        return _Outcome(error=f"timed out after {limit_s:g} s")
    except httpx.HTTPError as exc:
        return _Outcome(error=f"{type(exc).__name__}: {exc}")


async def _sign_and_attempt(
    client: httpx.AsyncClient, send: _Send, secret: str, msg_id: str, body: bytes, at: float
) -> _Outcome:
    try:
        headers = build_headers(secret, msg_id, body, at)
    except ValueError as exc:  # a malformed secret or id: no later attempt can fix it
        return _Outcome(error=f"cannot sign: {exc}", disable=True)
    return await _attempt(client, send, headers, body)


async def deliver_once(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    msg_id: str,
    body: bytes,
    allow_private: bool,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,  # noqa: ASYNC109 (a timeout is an outcome here, not an exception)
    resolver: Resolver | None = None,
    now: float | None = None,
    tenant: str | None = None,
) -> DeliveryAttempt:
    """POST one signed attempt of an event to `url`; never raises, only cancellation goes on.

    The URL is checked again (SSRF) right before sending, its lookup counting against
    `tenant`'s share of the lookup pool; the signature carries a fresh timestamp (`now`,
    default the clock) under the event's unchanging `msg_id`, redirects are never followed,
    and `timeout` bounds the whole attempt, DNS included. Any failure, foreseen or not, is
    a failed attempt with its reason in `error`.
    """
    attempted_at = time.time() if now is None else now
    started = time.perf_counter()
    send = _Send(url, allow_private, timeout, resolver, tenant)
    try:
        outcome = await _sign_and_attempt(client, send, secret, msg_id, body, attempted_at)
    except Exception as exc:  # anything but cancellation: a failed attempt, not a crash
        log.warning(
            "webhook_attempt_crashed",
            msg_id=msg_id,
            tenant=tenant,
            error_type=type(exc).__name__,
            exc_info=exc,
        )
        outcome = _Outcome(error=f"unexpected error: {_exception_types(exc)}")
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    attempt = DeliveryAttempt(
        attempted_at=attempted_at,
        status_code=outcome.status,
        ok=outcome.error is None and outcome.status is not None,
        duration_ms=duration_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error[:_MAX_ERROR_CHARS] if outcome.error else None,
        retry_after_s=outcome.retry_after_s,
        disable=outcome.disable,
    )
    log.info(
        "webhook_attempt",
        msg_id=msg_id,
        tenant=tenant,
        status_code=attempt.status_code,
        ok=attempt.ok,
        duration_ms=duration_ms,
        error=attempt.error,
    )
    return attempt

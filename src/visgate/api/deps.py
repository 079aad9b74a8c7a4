"""Dependency aliases that keep route signatures short (`ServicesDep`, `CurrentKey`), and how
a request proves whose it is: a bearer API key, or a web console session."""

from __future__ import annotations

import re
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request

from visgate.api.ratelimit import MemoryRateLimiter, RateLimiter
from visgate.auth.console_sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    csrf_matches,
    session_id,
)
from visgate.domain.errors import (
    DeploymentNotFoundError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedError,
)
from visgate.domain.records import ApiKey, hash_api_key
from visgate.kit import retry_after_header
from visgate.services import Services

_AUTH_CACHE_TTL_S = 5.0
_AUTH_CACHE_ENTRIES = 10_000
# Unknown API keys one client address may try per minute before it meets 429: far above a
# misconfigured script's retries, far below what guessing keys or flooding the store needs.
AUTH_FAILURES_PER_MINUTE = 300
# Ids that travel in a URL path, ours or upstream's. Deployment ids: wider than the ones we
# issue (`dep_` + 16 hex), narrower than what a store rejects (Firestore refuses `..` or
# `__x__` with an error that surfaced as a 500). Job ids: Runpod's `sync-<uuid>-u1` or a uuid,
# the local adapter's `local-<hex>`; they go into Runpod's URL, so `..`, `?`, `#` or NUL must not.
_PATH_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def require_deployment_id(deployment_id: str) -> str:
    """An id no deployment can have answers 404 like any unknown id, without a store read.

    A valid id is bound to the request's log context, so every line a route on one
    deployment writes (its own, a 5xx's) can be found by `deployment_id`."""
    if not _PATH_SAFE_ID.fullmatch(deployment_id) or (
        deployment_id.startswith("__") and deployment_id.endswith("__")
    ):
        raise DeploymentNotFoundError(f"deployment {deployment_id[:64]} not found")
    structlog.contextvars.bind_contextvars(deployment_id=deployment_id)
    return deployment_id


def require_job_id(job_id: str) -> str:
    """A job id no job can have answers 404 before the store or Runpod is asked."""
    if not _PATH_SAFE_ID.fullmatch(job_id):
        raise NotFoundError(f"job {job_id[:64]!r} not found")
    return job_id


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency on a worker thread, a hop
    that cost more than the rest of a GET."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_key(request: Request) -> ApiKey:
    """The caller's API key: from `Authorization: Bearer`, or, without that header, from a
    web console session cookie (whose state-changing requests must carry the session's CSRF
    token). Takes the services from the app rather than as a dependency: every
    sub-dependency is one more resolution pass on every authenticated request."""
    services: Services = request.app.state.services
    header = request.headers.get("authorization")
    session_token = request.cookies.get(SESSION_COOKIE) if header is None else None
    if session_token:
        key = await session_key(request, session_token)
        if request.method in UNSAFE_METHODS and not csrf_matches(
            session_token, request.headers.get(CSRF_HEADER)
        ):
            raise ForbiddenError(
                "a console session's changes need the page's CSRF token in X-CSRF-Token"
            )
    else:
        key = await _bearer_key(request, services, header or "")
    await count_request(request, key)
    return key


async def _bearer_key(request: Request, services: Services, header: str) -> ApiKey:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError(
            "missing or malformed Authorization header: send 'Authorization: Bearer <api_key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await _resolve(request, services, hash_api_key(token))
    if key is None or not key.active:
        raise UnauthorizedError(
            "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


async def session_key(request: Request, token: str) -> ApiKey:
    """The API key a console session was opened with; `UnauthorizedError` once the session
    has expired or ended, or its key was revoked (seen within the key cache's 5 s), which
    also ends the session."""
    services: Services = request.app.state.services
    # Made-up session cookies count with unknown keys: past the per-address budget they
    # meet 429 before any store read, as unknown bearer tokens do.
    failures, client = _refuse_guessing(request, "sessions or API keys")
    session = await services.store.console_sessions.get(session_id(token))
    if session is None:
        await failures.hit(client)
        raise UnauthorizedError("the console session has expired or was signed out")
    key = await _resolve(request, services, session.key_id)
    if key is None or not key.active:
        await services.store.console_sessions.delete(session.id)
        raise UnauthorizedError("the API key this console session was opened with is revoked")
    return key


async def key_for_sign_in(request: Request, api_key: str) -> ApiKey | None:
    """The active key a console sign-in presents, through the same cache and the same
    per-address limit on unknown keys as a bearer token."""
    services: Services = request.app.state.services
    key = await _resolve(request, services, hash_api_key(api_key))
    return key if key is not None and key.active else None


async def count_request(request: Request, key: ApiKey) -> None:
    """One request against the key's per-minute limit; 429 past it."""
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = await limiter.hit(key.id)
    if retry_after is not None:
        limit = request.app.state.services.settings.rate_limit_per_minute
        raise RateLimitedError(
            f"over {limit} requests per minute for this key",
            headers=retry_after_header(retry_after),
        )


async def _resolve(request: Request, services: Services, key_hash: str) -> ApiKey | None:
    """The key for a token hash, cached briefly. Unknown tokens are cached apart, so a flood
    of them never pushes real keys out; past AUTH_FAILURES_PER_MINUTE unknown tokens from
    one address, the next ones answer 429 without a store read (a key that address already
    used successfully still works from the cache)."""
    state = request.app.state
    now = state.auth_clock()
    known = state.auth_cache.get(key_hash)
    if known is not None and known[0] > now:
        return known[1]  # type: ignore[no-any-return]
    failures, client = _refuse_guessing(request, "API keys")
    miss_until = state.auth_misses.get(key_hash)
    if miss_until is None or miss_until <= now:
        key = await services.store.api_keys.by_hash(key_hash)
        if key is not None:
            _put(state.auth_cache, key_hash, (now + _AUTH_CACHE_TTL_S, key))
            return key
        _put(state.auth_misses, key_hash, now + _AUTH_CACHE_TTL_S)
    await failures.hit(client)
    return None


def _refuse_guessing(request: Request, what: str) -> tuple[MemoryRateLimiter, str]:
    """429 for an address past AUTH_FAILURES_PER_MINUTE unknown credentials this minute;
    else the limiter and the address a new unknown one is counted against."""
    client = request.client.host if request.client else "unknown"
    failures: MemoryRateLimiter = request.app.state.auth_failures
    retry_after = failures.blocked(client)
    if retry_after is not None:
        raise RateLimitedError(
            f"too many requests with unknown {what} from this address",
            headers=retry_after_header(retry_after),
        )
    return failures, client


def _put(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _AUTH_CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


CurrentKey = Annotated[ApiKey, Depends(current_key)]

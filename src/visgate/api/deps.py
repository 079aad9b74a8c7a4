"""Dependency aliases that keep route signatures short: `ServicesDep`, `CurrentKey`."""

from __future__ import annotations

import re
import time
from typing import Annotated

import structlog
from fastapi import Depends, Request

from visgate.api.ratelimit import RateLimiter
from visgate.domain.errors import DeploymentNotFoundError, RateLimitedError, UnauthorizedError
from visgate.domain.records import ApiKey, hash_api_key
from visgate.services import Services

_AUTH_CACHE_TTL_S = 5.0
# Wider than the ids we issue (`dep_` + 16 hex), narrower than what a store rejects: Firestore
# refuses ids such as `..` or `__x__` (or over 1500 bytes) with an error that surfaced as a 500.
_DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def require_deployment_id(deployment_id: str) -> str:
    """An id no deployment can have answers 404 like any unknown id, without a store read.

    A valid id is bound to the request's log context, so every line a route on one
    deployment writes (its own, a 5xx's) can be found by `deployment_id`."""
    if not _DEPLOYMENT_ID.fullmatch(deployment_id) or (
        deployment_id.startswith("__") and deployment_id.endswith("__")
    ):
        raise DeploymentNotFoundError(f"deployment {deployment_id[:64]} not found")
    structlog.contextvars.bind_contextvars(deployment_id=deployment_id)
    return deployment_id


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency on a worker thread, a hop
    that cost more than the rest of a GET."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_key(request: Request, services: ServicesDep) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError(
            "missing or malformed Authorization header: send 'Authorization: Bearer <api_key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key_hash = hash_api_key(token)
    cache: dict[str, tuple[float, ApiKey | None]] = request.app.state.auth_cache
    now = time.monotonic()
    cached = cache.get(key_hash)
    if cached is not None and cached[0] > now:
        key = cached[1]
    else:
        key = await services.store.api_key_by_hash(key_hash)
        if len(cache) > 10_000:
            cache.clear()
        cache[key_hash] = (now + _AUTH_CACHE_TTL_S, key)
    if key is None or not key.active:
        raise UnauthorizedError(
            "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = await limiter.hit(key.id)
    if retry_after is not None:
        raise RateLimitedError(
            f"over {services.settings.rate_limit_per_minute} requests per minute for this key",
            headers={"Retry-After": str(int(retry_after))},
        )
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]

"""Dependency aliases that keep route signatures short: `ServicesDep`, `CurrentKey`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from visgate.api.ratelimit import RateLimiter
from visgate.domain.errors import RateLimitedError, UnauthorizedError
from visgate.domain.records import ApiKey, hash_api_key
from visgate.services import Services

_AUTH_CACHE_TTL_S = 5.0


def get_services(request: Request) -> Services:
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

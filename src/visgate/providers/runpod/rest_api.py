"""`RunpodRest`: one call to Runpod's REST API v2 (`https://api.runpod.io/v2`) with a caller's
key, every failure mapped to the domain's error types.

Runpod answers errors as `application/problem+json` `{title, status, detail, errors}`
(its published OpenAPI document, components/schemas/ErrorResponse):
- 401/403: a bad key, `RunpodAuthError` (permanent);
- 404: `RestNotFound` (a delete reads it as "already gone", a lookup as "none");
- 400/409/422: a refusal, `RunpodAPIError` carrying Runpod's `detail` and `errors`, or
  `RunpodInsufficientGPUError` when the detail speaks of the account's worker cap;
- 429: `Transient`, waiting what `Retry-After` (or the `RateLimit` header's `t=`) asks;
- 5xx, timeouts, connection failures: `Transient`.
An answer that is not the documented shape (not JSON, no `id`) is `RunpodBadAnswerError`,
naming what was missing. The key travels only in `Authorization: Bearer`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from visgate.domain.errors import RunpodAPIError, RunpodAuthError, RunpodInsufficientGPUError
from visgate.kit import parse_retry_after
from visgate.providers.runpod.messages import is_quota, scrub
from visgate.providers.runpod.retry import RetryPolicy, Transient
from visgate.providers.runpod.serverless import PooledHttp


class RestNotFound(RunpodAPIError):
    """HTTP 404: the template or endpoint is not there (or not the caller's)."""


class RunpodBadAnswerError(RunpodAPIError):
    """Runpod answered 2xx with something that is not the documented shape."""


def rate_limit_wait(headers: httpx.Headers) -> float | None:
    """Seconds to wait on a 429: `Retry-After` first, else the latest reset time `t` among
    the windows with no requests left (`RateLimit: "minute";r=0;t=12, "hour";r=5;t=900`)."""
    wait = parse_retry_after(headers.get("retry-after"))
    if wait is not None:
        return wait
    waits = []
    for member in headers.get("ratelimit", "").split(","):
        params = dict(p.strip().partition("=")[::2] for p in member.split(";")[1:])
        if params.get("r") == "0" and params.get("t", "").isdigit():
            waits.append(float(params["t"]))
    return max(waits) if waits else None


class RunpodRest(PooledHttp):
    def __init__(
        self, base_url: str, *, timeout: float = 30.0, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(timeout=timeout, policy=policy)
        self.base_url = base_url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        api_key: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        retry: bool = True,
        repeatable: bool = True,
    ) -> Any:
        """The decoded JSON answer (None for 204). `retry=False` leaves retries to the
        caller (a flow that looks up again before repeating); `repeatable=False` retries
        only failures that surely had no effect."""
        what = f"{method} {_route(path)}"

        async def once() -> Any:
            return await self._once(method, path, what, api_key, body, params)

        if not retry:
            return await once()
        return await self.policy.run(once, what=what, repeatable=repeatable)

    async def events(
        self,
        path: str,
        *,
        api_key: str,
        params: dict[str, str],
        limit: int,
        idle_s: float = 1.0,
        total_s: float = 5.0,
    ) -> list[dict[str, Any]]:
        """The JSON `data` of up to `limit` Server-Sent Events from a stream that stays
        open (a log follower): reading stops at `limit`, after `idle_s` without an event
        (the backfill is over) or after `total_s` in all."""
        what = f"GET {_route(path)}"

        async def once() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(total_s + self.timeout):
                    async with aconnect_sse(
                        await self._client(),
                        "GET",
                        f"{self.base_url}{path}",
                        params=params,
                        headers={"Authorization": f"Bearer {api_key}"},
                    ) as source:
                        if source.response.status_code != 200:
                            await source.response.aread()
                            _answer(source.response, what, api_key)
                        await _collect(source.aiter_sse(), out, limit, idle_s, total_s)
            except (httpx.TimeoutException, TimeoutError):
                if not out:
                    raise Transient(f"Runpod did not answer {what} in time") from None
            except httpx.TransportError as exc:
                raise Transient(f"Runpod unreachable for {what} ({type(exc).__name__})") from None
            return out

        return await self.policy.run(once, what=what)

    async def _once(
        self,
        method: str,
        path: str,
        what: str,
        api_key: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> Any:
        response = await self._send(
            what,
            method,
            f"{self.base_url}{path}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )
        return _answer(response, what, api_key)


async def _collect(
    stream: AsyncIterator[ServerSentEvent],
    out: list[dict[str, Any]],
    limit: int,
    idle_s: float,
    total_s: float,
) -> None:
    deadline = asyncio.get_running_loop().time() + total_s
    while len(out) < limit:
        left = min(idle_s, deadline - asyncio.get_running_loop().time())
        if left <= 0:
            return
        try:
            event = await asyncio.wait_for(anext(stream), left)
        except (StopAsyncIteration, TimeoutError):
            return
        try:
            data = json.loads(event.data)
        except ValueError:
            data = {"line": event.data}
        if isinstance(data, dict):
            out.append(data)


def _route(path: str) -> str:
    """The path with ids replaced, for logs: `/serverless/abc123` → `/serverless/{id}`."""
    parts = path.split("?")[0].strip("/").split("/")
    named = {"serverless", "templates", "catalog", "gpus", "workers", "logs", "billing"}
    return "/" + "/".join(p if p in named or not p else "{id}" for p in parts)


def _answer(response: httpx.Response, what: str, api_key: str) -> Any:
    status = response.status_code
    if status in (401, 403):
        raise RunpodAuthError(
            f"Runpod rejected the API key (HTTP {status}) on {what}: check the key"
        )
    if status == 429:
        raise Transient(
            f"Runpod rate-limited {what} (HTTP 429)",
            retry_after=rate_limit_wait(response.headers),
            not_sent=True,
        )
    if status >= 500:
        raise Transient(
            f"Runpod answered HTTP {status} to {what}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if status >= 300:
        raise refusal(status, what, problem_text(response, api_key))
    if status == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise RunpodBadAnswerError(f"Runpod answered {what} with no JSON ({kind})") from None


def refusal(status: int, what: str, text: str) -> RunpodAPIError:
    """A 4xx answer as a domain error: the worker cap is a GPU verdict, 404 its own type."""
    if status == 404:
        return RestNotFound(f"Runpod has no such resource ({what}): {text}")
    if is_quota(text):
        return RunpodInsufficientGPUError(f"Runpod refused {what}: {text}")
    return RunpodAPIError(f"Runpod refused {what} (HTTP {status}): {text}")


def problem_text(response: httpx.Response, api_key: str) -> str:
    """Runpod's own words from a problem+json body: `detail`, then each of `errors`."""
    try:
        data = response.json()
    except ValueError:
        return scrub(response.text[:300] or response.reason_phrase, api_key)
    if not isinstance(data, dict):
        return scrub(str(data)[:300], api_key)
    parts = [str(data.get("detail") or data.get("title") or "no detail")]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:10]))
    return scrub(": ".join(parts)[:1000], api_key)


def require(data: Any, *keys: str, what: str) -> dict[str, Any]:
    """`data` as a dict that has `keys`, else `RunpodBadAnswerError` naming the missing."""
    if not isinstance(data, dict):
        raise RunpodBadAnswerError(
            f"Runpod answered {what} with {type(data).__name__}, not an object"
        )
    missing = [k for k in keys if data.get(k) in (None, "")]
    if missing:
        raise RunpodBadAnswerError(f"Runpod's answer to {what} has no {', '.join(missing)}")
    return data


def items(data: Any, key: str, *, what: str) -> list[dict[str, Any]]:
    """The list under `key` of a list answer (`{"endpoints": [...]}`), rows without an id
    or name dropped."""
    body = require(data, what=what)
    rows = body.get(key)
    if not isinstance(rows, list):
        raise RunpodBadAnswerError(f"Runpod's answer to {what} has no {key} list")
    return [r for r in rows if isinstance(r, dict) and r.get("id")]

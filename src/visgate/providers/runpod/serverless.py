"""`ServerlessAPI`: an endpoint's job API (`{api_base}/{endpoint_id}/...`) over httpx.

Routes and shapes from docs.runpod.io/serverless/endpoints/operations: `POST /run` →
`{id, status}`, `POST /runsync` → the finished job (or IN_QUEUE/IN_PROGRESS when the
wait ran out), `GET /status/{job}`, `POST /cancel/{job}`, `GET /health` →
`{jobs: {...}, workers: {idle, initializing, ready, running, throttled, unhealthy}}`.
"""

from __future__ import annotations

from typing import Any

import httpx

from visgate.domain.errors import (
    NotFoundError,
    PayloadTooLargeError,
    RunpodAPIError,
    RunpodAuthError,
    ValidationError,
)
from visgate.kit import parse_retry_after
from visgate.providers.runpod.messages import scrub
from visgate.providers.runpod.per_loop import PerLoop
from visgate.providers.runpod.retry import RetryPolicy, Transient

# /runsync holds the request open while the job runs (Runpod waits up to ~90 s).
RUNSYNC_EXTRA_READ_S = 95.0


class PooledHttp:
    """One pooled httpx client for every key (the key travels per request), one per event
    loop (per_loop.py): another `asyncio.run` cannot reuse the old pool's sockets."""

    label = "Runpod"  # who failed to answer, in error messages

    def __init__(self, *, timeout: float = 30.0, policy: RetryPolicy | None = None) -> None:
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self._pools: PerLoop[httpx.AsyncClient] = PerLoop(self._new_client, _close_client)

    async def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout)

    async def _client(self) -> httpx.AsyncClient:
        return await self._pools.get()

    async def _send(self, what: str, method: str, url: str, **options: Any) -> httpx.Response:
        """One request. A timeout or transport failure is `Transient`, marked `not_sent`
        when the connection never opened (then even a create may be repeated)."""
        try:
            client = await self._client()
            return await client.request(method, url, **options)
        except httpx.TimeoutException:
            raise Transient(f"{self.label} did not answer {what} in time") from None
        except httpx.TransportError as exc:
            raise Transient(
                f"{self.label} unreachable for {what} ({type(exc).__name__})",
                not_sent=isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout),
            ) from None

    async def aclose(self) -> None:
        await self._pools.aclose()


async def _close_client(client: httpx.AsyncClient) -> None:
    await client.aclose()


class ServerlessAPI(PooledHttp):
    label = "Runpod endpoint API"

    def __init__(
        self, api_base: str, *, timeout: float = 30.0, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(timeout=timeout, policy=policy)
        self.api_base = api_base.rstrip("/")

    def endpoint_url(self, endpoint_id: str) -> str:
        return f"{self.api_base}/{endpoint_id}"

    async def health(self, endpoint_id: str, *, api_key: str) -> dict[str, Any]:
        return await self._call("GET", endpoint_id, "/health", api_key=api_key)

    async def submit(
        self, endpoint_id: str, body: dict[str, Any], *, api_key: str, sync: bool
    ) -> dict[str, Any]:
        # Not repeated after an ambiguous failure: a second /run would queue a second job.
        read = self.timeout + RUNSYNC_EXTRA_READ_S if sync else self.timeout
        return await self._call(
            "POST",
            endpoint_id,
            "/runsync" if sync else "/run",
            api_key=api_key,
            body=body,
            repeatable=False,
            request_timeout=httpx.Timeout(self.timeout, read=read),
        )

    async def status(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self._call("GET", endpoint_id, f"/status/{job_id}", api_key=api_key)

    async def cancel(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self._call("POST", endpoint_id, f"/cancel/{job_id}", api_key=api_key)

    async def _call(
        self,
        method: str,
        endpoint_id: str,
        path: str,
        *,
        api_key: str,
        body: dict[str, Any] | None = None,
        repeatable: bool = True,
        request_timeout: httpx.Timeout | None = None,
    ) -> dict[str, Any]:
        what = f"{method} /{path.split('/')[1]}"  # the route, without the job id

        async def once() -> dict[str, Any]:
            response = await self._send(
                what,
                method,
                f"{self.endpoint_url(endpoint_id)}{path}",
                json=body,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=request_timeout or self.timeout,
            )
            return _answer(response, what, endpoint_id, api_key)

        return await self.policy.run(once, what=what, repeatable=repeatable)


def _answer(response: httpx.Response, what: str, endpoint_id: str, api_key: str) -> dict[str, Any]:
    status = response.status_code
    if status in (401, 403):
        raise RunpodAuthError(f"Runpod rejected the API key (HTTP {status}) on {what}")
    if status == 429 or status >= 500:
        raise Transient(
            f"Runpod endpoint API answered HTTP {status} to {what}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            not_sent=status == 429,
        )
    detail = scrub(_detail(response), api_key)
    if status == 404:
        raise NotFoundError(f"Runpod has no such endpoint or job ({endpoint_id}): {detail}")
    if status == 413:
        raise PayloadTooLargeError(f"Runpod refused the job body as too large: {detail}")
    if status in (400, 422):
        raise ValidationError(f"Runpod refused {what}: {detail}")
    if status >= 300:
        raise RunpodAPIError(f"Runpod endpoint API answered HTTP {status} to {what}: {detail}")
    try:
        data = response.json()
    except ValueError:
        raise RunpodAPIError(f"Runpod endpoint API sent no JSON to {what}") from None
    if not isinstance(data, dict):
        raise RunpodAPIError(f"Runpod endpoint API sent an unexpected answer to {what}")
    return data


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if data.get(key):
                return str(data[key])[:200]
    return str(data)[:200]

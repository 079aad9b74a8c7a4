"""`RunpodGraphQL`: runs one named operation with a caller's key and maps every failure
to the domain's error types.

The key rides in `Authorization: Bearer` (the `?api_key=` form the SDK uses ends up in
access logs). gql hides the HTTP status when the body is JSON, so a response hook reads
it first: 401/403 is a bad key whatever the body says; 429 and 5xx are worth a retry, and
so are GraphQL errors that ask to "try again" (Runpod's wording for its own hiccups).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport import httpx as gql_httpx  # its `httpx` is whichever module gql drives
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport

from visgate.domain.errors import (
    RunpodAPIError,
    RunpodAuthError,
    RunpodInsufficientGPUError,
    VisgateError,
)
from visgate.kit import parse_retry_after
from visgate.providers.runpod.messages import is_quota, is_retryable, scrub
from visgate.providers.runpod.operations import operation_name
from visgate.providers.runpod.per_loop import PerLoop
from visgate.providers.runpod.retry import RetryPolicy, Transient

_NOT_SENT = ("ConnectError", "ConnectTimeout")


class _HttpStatus(Exception):
    """Raised from the response hook; gql passes it on as the cause of its own error."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


async def _check_status(response: Any) -> None:
    status = int(response.status_code)
    if status in (401, 403, 429) or status >= 500:
        raise _HttpStatus(status, parse_retry_after(response.headers.get("retry-after")))


async def _disconnect(client: Client) -> None:
    await client.close_async()


class RunpodGraphQL:
    """One pooled connection for every key: the key travels per request, not per client."""

    def __init__(self, url: str, *, timeout: float = 30.0, policy: RetryPolicy | None = None):
        self.url = url
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        # One connected client per event loop (per_loop.py): its sockets belong to that loop.
        self._clients: PerLoop[Client] = PerLoop(self._connect, _disconnect)

    async def execute(
        self,
        request: GraphQLRequest,
        variables: dict[str, Any] | None = None,
        *,
        api_key: str,
        retry: bool = True,
        repeatable: bool = True,
    ) -> dict[str, Any]:
        """The `data` of one operation. `retry=False` leaves retries to the caller (a flow
        that looks up again before repeating); `repeatable=False` retries only failures
        that surely had no effect."""
        name = operation_name(request)

        async def once() -> dict[str, Any]:
            return await self._once(request, variables, name, api_key)

        if not retry:
            return await once()
        return await self.policy.run(once, what=name, repeatable=repeatable)

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def _connect(self) -> Client:
        transport = HTTPXAsyncTransport(
            url=self.url, timeout=self.timeout, event_hooks={"response": [_check_status]}
        )
        client = Client(
            transport=transport, fetch_schema_from_transport=False, execute_timeout=self.timeout + 5
        )
        await client.connect_async()
        return client

    async def _once(
        self,
        request: GraphQLRequest,
        variables: dict[str, Any] | None,
        name: str,
        api_key: str,
    ) -> dict[str, Any]:
        session = (await self._clients.get()).session
        try:
            result = await session.execute(
                GraphQLRequest(request, variable_values=variables or None),
                extra_args={"headers": {"Authorization": f"Bearer {api_key}"}},
            )
        except (TransportError, TimeoutError) as exc:
            raise _map_error(exc, name, api_key) from None
        return dict(result)


def _map_error(exc: BaseException, name: str, api_key: str) -> Exception:
    """One Runpod failure as a domain error (or `Transient`). Never carries the key."""
    cause = exc.__cause__
    if isinstance(exc, TransportConnectionFailed) and isinstance(cause, _HttpStatus):
        if cause.status in (401, 403):
            return RunpodAuthError(
                f"Runpod rejected the API key (HTTP {cause.status}) on {name}: check the key"
            )
        return Transient(
            f"Runpod answered HTTP {cause.status} to {name}",
            retry_after=cause.retry_after,
            not_sent=cause.status == 429,
        )
    if isinstance(exc, TransportConnectionFailed):
        kind = type(cause).__name__ if cause is not None else "connection failure"
        is_timeout = cause is not None and isinstance(cause, gql_httpx.httpx.TimeoutException)
        return Transient(
            f"Runpod did not answer {name} ({'timeout' if is_timeout else kind})",
            not_sent=kind in _NOT_SENT,
        )
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Transient(f"Runpod did not answer {name} in time")
    if isinstance(exc, TransportQueryError):
        return refusal_or_hiccup(name, _first_message(exc), api_key)
    if isinstance(exc, TransportServerError):
        return RunpodAPIError(f"Runpod answered HTTP {exc.code} to {name}")
    if isinstance(exc, TransportProtocolError):  # e.g. an HTML maintenance page
        return Transient(f"Runpod sent no GraphQL answer to {name}")
    return RunpodAPIError(f"Runpod call {name} failed ({type(exc).__name__})")


def _first_message(exc: TransportQueryError) -> str:
    for error in exc.errors or []:
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return "no message"


def refusal_or_hiccup(name: str, message: str, api_key: str) -> VisgateError | Transient:
    """A GraphQL error answer. Runpod words its internal failures as "Something went wrong.
    Please try again later." at HTTP 200: those are `Transient` (retried by the policy, then
    `RunpodUnavailableError` for the reconciler's backoff); the rest are refusals. The
    worker cap is checked first: it is final even if a message ever suggests a retry."""
    text = scrub(message, api_key)
    if not is_quota(text) and is_retryable(text):
        return Transient(f"Runpod failed {name} on its side: {text}")
    return refusal(name, message, api_key)


def refusal(name: str, message: str, api_key: str) -> VisgateError:
    """A GraphQL error answer: quota texts are `RunpodInsufficientGPUError`, the rest
    `RunpodAPIError`, both with Runpod's own words (its messages are terse)."""
    text = scrub(message, api_key)
    if is_quota(text):
        return RunpodInsufficientGPUError(f"Runpod refused {name}: {text}")
    return RunpodAPIError(f"Runpod refused {name}: {text}")

"""A small HTTP client of the public API for the CLI (and for scripts): one place that
knows the routes, the auth header and the error envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from visgate.domain.errors import VisgateError

# The service holds `/jobs/sync` open while the job runs: Runpod's `/runsync` waits ~90 s, the
# local adapter 90 s by default. The read timeout of that one call must outlast the hold, or
# a job that takes a minute fails on the client while it succeeds on the server.
RUNSYNC_READ_TIMEOUT_S = 120.0
# The event stream sends a comment ping every 15 s; a read this long without one means the
# connection is dead (a reconnect with Last-Event-ID follows).
EVENTS_READ_TIMEOUT_S = 60.0


class ApiError(VisgateError):
    """An error answer from the service, carrying its wire type."""

    def __init__(self, type_: str, message: str, status_code: int) -> None:
        super().__init__(message)
        self._type = type_
        self.http_status = status_code

    @property
    def type(self) -> str:
        return self._type


class VisgateClient:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        if not api_key:
            raise ApiError(
                "UnauthorizedError", "set VISGATE_API_KEY (see `visgate keys create`)", 401
            )
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def __enter__(self) -> VisgateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                "TimeoutError", f"{self._http.base_url} did not answer in time", 0
            ) from exc
        except httpx.HTTPError as exc:
            raise ApiError(
                "ConnectionError",
                f"cannot reach {self._http.base_url} ({exc}); is the service up?",
                0,
            ) from exc
        if resp.status_code >= 400:
            raise _error_of(resp)
        try:
            return resp.json() if resp.content else None
        except ValueError:
            raise ApiError(
                "HTTPError",
                f"{self._http.base_url} answered something that is not JSON: {resp.text[:200]}",
                resp.status_code,
            ) from None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/deployments", json=body)  # type: ignore[no-any-return]

    def get(self, deployment_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/deployments/{deployment_id}")  # type: ignore[no-any-return]

    def list(
        self, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        params = {
            k: v for k, v in {"status": status, "limit": limit, "cursor": cursor}.items() if v
        }
        return self._call("GET", "/v1/deployments", params=params)  # type: ignore[no-any-return]

    def logs(
        self, deployment_id: str, *, source: str = "control", lines: int = 100
    ) -> dict[str, Any]:
        """`GET /v1/deployments/{id}/logs`: `source="worker"` for the workers' own output."""
        params = {"source": source, "lines": lines}
        return self._call("GET", f"/v1/deployments/{deployment_id}/logs", params=params)  # type: ignore[no-any-return]

    def cost(self, deployment_id: str) -> dict[str, Any]:
        """`GET /v1/deployments/{id}/cost`: price per hour now and spend so far (USD)."""
        return self._call("GET", f"/v1/deployments/{deployment_id}/cost")  # type: ignore[no-any-return]

    def delete(self, deployment_id: str) -> None:
        self._call("DELETE", f"/v1/deployments/{deployment_id}")

    def run_job(
        self,
        deployment_id: str,
        job_input: dict[str, Any],
        *,
        sync: bool = True,
        read_timeout: float = RUNSYNC_READ_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Submit a job; `sync` waits for it while the service holds the call (then the
        answer may still be IN_QUEUE/IN_PROGRESS: poll `job_status`)."""
        path = f"/v1/deployments/{deployment_id}/jobs" + ("/sync" if sync else "")
        timeout = httpx.Timeout(self.timeout, read=read_timeout) if sync else self.timeout
        return self._call("POST", path, json={"input": job_input}, timeout=timeout)  # type: ignore[no-any-return]

    def job_status(self, deployment_id: str, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/deployments/{deployment_id}/jobs/{job_id}")  # type: ignore[no-any-return]

    def events(
        self, deployment_id: str, *, last_event_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Status events from the SSE stream until the service closes it at a settled status."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            with connect_sse(
                self._http,
                "GET",
                f"/v1/deployments/{deployment_id}/events",
                headers=headers,
                timeout=httpx.Timeout(self.timeout, read=EVENTS_READ_TIMEOUT_S),
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise _error_of(source.response)
                for sse in source.iter_sse():
                    if sse.event == "status":
                        yield {"id": sse.id, **json.loads(sse.data)}
        except httpx.HTTPError as exc:
            raise ApiError("ConnectionError", f"event stream broke off: {exc}", 0) from exc


def _error_of(resp: httpx.Response) -> ApiError:
    """The service's error envelope as an ApiError, or the raw answer when it has none."""
    try:
        error = resp.json()["error"]
        return ApiError(str(error["type"]), str(error["message"]), resp.status_code)
    except (ValueError, KeyError, TypeError):
        return ApiError(
            "HTTPError", f"HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code
        )

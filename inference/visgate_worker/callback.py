"""Status callbacks to the control plane (`VISGATE_WEBHOOK`, README, "The worker callback").

The control plane treats callbacks as idempotent, so a retried POST is safe. Network errors,
5xx, 408 and 429 are retried with exponential backoff; any other 4xx is final (a wrong token or
a deleted deployment will not get better by asking again).
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from visgate_worker.errors import WorkerError

log = structlog.get_logger(__name__)

RETRYABLE_STATUS = {408, 429}
# The control plane's limits on free-text fields (longer bodies would be refused with a 422).
MAX_LENGTHS = {"error": 4000, "message": 1000}


class CallbackRejectedError(WorkerError):
    """The control plane answered a 4xx that retrying cannot fix."""


class CallbackHTTPError(WorkerError):
    """A retryable answer (5xx, 408, 429); kept as an exception so tenacity retries it."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | CallbackHTTPError)


class CallbackClient:
    """POSTs `{"status": ...}` bodies; `send` never raises: a worker that cannot report still
    serves jobs, and the control plane's ready timeout covers a lost callback."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        attempts: int = 8,
        wait: wait_base | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._token = token
        self._attempts = attempts
        self._wait = wait or wait_exponential_jitter(initial=1, max=30)
        self._http = httpx.Client(timeout=timeout_s)

    def __repr__(self) -> str:  # never shows the token
        return f"CallbackClient(url={self.url!r})"

    def send(self, status: str, **fields: Any) -> bool:
        """True when the control plane accepted the callback."""
        body: dict[str, Any] = {"status": status}
        for key, value in fields.items():
            if value is not None:
                limit = MAX_LENGTHS.get(key)
                body[key] = value[:limit] if limit and isinstance(value, str) else value
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self._attempts),
                wait=self._wait,
                retry=retry_if_exception(_retryable),
                reraise=False,
            ):
                with attempt:
                    self._post(body, headers, attempt.retry_state.attempt_number)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            log.error("callback_failed", status=status, error=str(last), attempts=self._attempts)
            return False
        except CallbackRejectedError as exc:
            log.error("callback_rejected", status=status, error=str(exc))
            return False
        log.info("callback_sent", status=status)
        return True

    def _post(self, body: dict[str, Any], headers: dict[str, str], attempt: int) -> None:
        try:
            resp = self._http.post(self.url, json=body, headers=headers)
        except httpx.TransportError as exc:
            log.warning("callback_retry", status=body["status"], attempt=attempt, error=str(exc))
            raise
        if resp.status_code < 300:
            return
        detail = f"callback answered HTTP {resp.status_code}"
        if resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUS:
            log.warning("callback_retry", status=body["status"], attempt=attempt, error=detail)
            raise CallbackHTTPError(detail)
        raise CallbackRejectedError(f"{detail}: {resp.text[:200]}")

    def close(self) -> None:
        self._http.close()


class NullCallback:
    """Plain local use (no `VISGATE_WEBHOOK`): progress is only logged."""

    url = None

    def send(self, status: str, **fields: Any) -> bool:
        log.info("callback_skipped", status=status, reason="VISGATE_WEBHOOK is not set")
        return True

    def close(self) -> None:
        return None


def callback_for(url: str | None, token: str | None) -> CallbackClient | NullCallback:
    return CallbackClient(url, token) if url else NullCallback()

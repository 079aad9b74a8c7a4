"""One retry policy for both Runpod surfaces: tenacity, exponential backoff with full jitter,
`Retry-After` honoured, then `RunpodUnavailableError` so the reconciler retries later.

Calls that create something (a job, a template, an endpoint) are repeated only when the
first try surely never ran (429, connection refused); the `ensure_*` flows get their
safety from a fresh lookup by name on every try instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from visgate.domain.errors import RunpodUnavailableError
from visgate.logging import get_logger

__all__ = ["RetryPolicy", "Transient"]

log = get_logger(__name__)
T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try: 429, 5xx, timeout, connection error, Runpod's lag."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, not_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.not_sent = not_sent  # the request surely had no effect: safe to repeat anything

    def to_public(self) -> RunpodUnavailableError:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after)))
        return RunpodUnavailableError(self.message, headers=headers)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    max_wait: float = 20.0
    base_wait: float = 0.5

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait)
        # Full jitter: uniform in [0, min(max_wait, base * 2^n)].
        backoff = wait_random_exponential(multiplier=self.base_wait, max=self.max_wait)
        return float(backoff(state))

    def _worth_retrying(self, exc: BaseException, *, repeatable: bool) -> bool:
        if not isinstance(exc, Transient):
            return False
        if exc.retry_after is not None and exc.retry_after > self.max_wait:
            return False  # Runpod asks for a longer pause than we may spend: hand it back
        return repeatable or exc.not_sent

    async def run(self, fn: Callable[[], Awaitable[T]], *, what: str, repeatable: bool = True) -> T:
        """Run `fn`, retrying `Transient` failures; give up as `RunpodUnavailableError`."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "runpod_retry",
                operation=what,
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 3),
                reason=getattr(exc, "message", type(exc).__name__),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=self._wait,
            retry=retry_if_exception(lambda e: self._worth_retrying(e, repeatable=repeatable)),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except Transient as exc:
            log.warning("runpod_unavailable", operation=what, reason=exc.message)
            raise exc.to_public() from None
        raise AssertionError("unreachable")  # pragma: no cover

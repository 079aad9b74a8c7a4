"""When to try a failed webhook again: `WEBHOOK_RETRY_SCHEDULE` with jitter, as tenacity waits.

The reconciler stores the next due time on the delivery record instead of sleeping, so
this module only answers "how long until attempt n+1", using tenacity's wait strategies
(one `wait_random` band per schedule step, chained) rather than its sleeping loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import tenacity
from tenacity.wait import wait_base

DEFAULT_SCHEDULE: Final = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
JITTER: Final = 0.10  # ±10 %, so receivers that failed together are not retried together
MAX_RETRY_AFTER_SECONDS: Final = 86_400.0  # a receiver cannot park a delivery for longer


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"5,300,1800"` → `(5.0, 300.0, 1800.0)`: seconds between attempts, in order."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        delays = tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(
            "WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. 5,300,1800"
        ) from None
    if any(math.isnan(delay) or delay < 0 for delay in delays):
        raise ValueError("WEBHOOK_RETRY_SCHEDULE values must be >= 0")
    return delays


def schedule_wait(schedule: Sequence[float], jitter: float = JITTER) -> wait_base:
    """A tenacity wait strategy: after attempt n, wait schedule[n-1] ± jitter.

    Also usable with `tenacity.retry(wait=...)`; past the end it keeps the last step.
    """
    if not schedule:
        raise ValueError("a retry schedule needs at least one delay")
    return tenacity.wait_chain(
        *(tenacity.wait_random(min=d * (1 - jitter), max=d * (1 + jitter)) for d in schedule)
    )


def _bounded_retry_after(retry_after: float | None) -> float:
    if retry_after is None or math.isnan(retry_after) or retry_after <= 0:
        return 0.0
    return min(float(retry_after), MAX_RETRY_AFTER_SECONDS)


def next_delay(
    schedule: Sequence[float], attempt_number: int, retry_after: float | None = None
) -> float | None:
    """Seconds to wait after failed attempt `attempt_number` (1-based), or None when done.

    With a schedule of k delays there are k retries, k+1 attempts in all; None then means
    the delivery has failed for good (the deployment becomes `webhook_failed`). A receiver's
    `Retry-After` can lengthen the wait, up to one day, never shorten it.
    """
    if attempt_number < 1:
        raise ValueError("attempt_number counts attempts made, starting at 1")
    if attempt_number > len(schedule):
        return None
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    delay = schedule_wait(schedule)(state)
    return max(delay, _bounded_retry_after(retry_after))

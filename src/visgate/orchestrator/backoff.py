"""Delays between tries of a step that met a transient error.

tenacity computes them (exponential with full jitter) so the loop never hand-rolls jitter;
the loop itself stays a scheduler: it writes the next due time instead of sleeping.
"""

from __future__ import annotations

from types import SimpleNamespace

from tenacity import wait_exponential, wait_random_exponential

from visgate.domain.errors import StoreAccessError, TransientError

MAX_TRANSIENT_ATTEMPTS = 25  # about two hours at the 5-minute cap before a deployment fails
MAX_DELAY_S = 300.0

# What the loops wait out rather than die of: store outages, and a store refusing access
# (IAM not yet propagated, an index still building) that the operator is expected to fix.
STORE_TROUBLE = (TransientError, StoreAccessError)

_wait = wait_random_exponential(multiplier=2, max=MAX_DELAY_S)


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before try number `attempt + 1`; at least what the upstream asked for.

    From the cap on (only teardowns get that far) every wait is the maximum: jitter could
    otherwise retry a step that keeps failing within seconds, for ever.
    """
    if attempt >= MAX_TRANSIENT_ATTEMPTS:
        return max(MAX_DELAY_S, retry_after or 0.0)
    delay = float(_wait(SimpleNamespace(attempt_number=attempt)))  # type: ignore[arg-type]
    return max(delay, retry_after or 0.0, 0.5)


# A teardown the provider refuses (a revoked key) is retried on a long, growing interval:
# 10 minutes, then doubling up to 6 hours. Hammering Runpod with a dead key helps nobody;
# a DELETE from the user retries at once.
_blocked_wait = wait_exponential(multiplier=600, max=6 * 3600)


def blocked_delay(attempt: int) -> float:
    """Seconds before the next try of a blocked teardown, after `attempt` failed ones."""
    return float(_blocked_wait(SimpleNamespace(attempt_number=max(1, attempt))))  # type: ignore[arg-type]

"""Delays between tries of a step that met a transient error.

tenacity computes them (exponential with full jitter) so the loop never hand-rolls jitter;
the loop itself stays a scheduler: it writes the next due time instead of sleeping.
"""

from __future__ import annotations

from types import SimpleNamespace

from tenacity import wait_random_exponential

MAX_TRANSIENT_ATTEMPTS = 25  # about two hours at the 5-minute cap before a deployment fails

_wait = wait_random_exponential(multiplier=2, max=300)


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before try number `attempt + 1`; at least what the upstream asked for."""
    delay = float(_wait(SimpleNamespace(attempt_number=attempt)))  # type: ignore[arg-type]
    return max(delay, retry_after or 0.0, 0.5)

"""The retry schedule: how long after each failed attempt, and when to give up."""

from __future__ import annotations

import random

import pytest
import tenacity

from visgate.webhooks.schedule import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER_SECONDS,
    next_delay,
    parse_schedule,
    schedule_wait,
)


@pytest.fixture(autouse=True)
def _seeded_random() -> None:
    random.seed(1234)  # tenacity's jitter draws from `random`; keep runs repeatable


def test_parse_schedule_reads_the_env_format() -> None:
    assert parse_schedule("5,300,1800,7200,18000,36000") == DEFAULT_SCHEDULE
    assert parse_schedule(" 1, 2.5 ,") == (1.0, 2.5)
    assert parse_schedule("") == ()


@pytest.mark.parametrize("text", ["5,soon", "5,-1", "nan"])
def test_parse_schedule_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_RETRY_SCHEDULE"):
        parse_schedule(text)


def test_each_failed_attempt_waits_its_step_within_ten_percent() -> None:
    for attempt, step in enumerate(DEFAULT_SCHEDULE, start=1):
        delays = [next_delay(DEFAULT_SCHEDULE, attempt, None) for _ in range(200)]
        assert all(d is not None and 0.9 * step <= d <= 1.1 * step for d in delays)
        # Jittered: spread across the band rather than one fixed value.
        assert max(delays) - min(delays) > 0.1 * step  # type: ignore[operator]


def test_the_schedule_is_exhausted_after_one_retry_per_step() -> None:
    schedule = (5.0, 300.0, 1800.0)
    assert next_delay(schedule, 3, None) is not None
    assert next_delay(schedule, 4, None) is None  # 1 first try + 3 retries: done
    assert next_delay(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE) + 1, None) is None


def test_an_empty_schedule_means_a_single_attempt() -> None:
    assert next_delay((), 1, None) is None


def test_retry_after_lengthens_the_wait_but_never_shortens_it() -> None:
    assert next_delay((5.0,), 1, retry_after=120.0) == 120.0
    assert 1620 <= next_delay((1800.0,), 1, retry_after=10.0) <= 1980  # type: ignore[operator]


@pytest.mark.parametrize("retry_after", [None, 0.0, -30.0, float("nan")])
def test_meaningless_retry_after_is_ignored(retry_after: float | None) -> None:
    assert 4.5 <= next_delay((5.0,), 1, retry_after) <= 5.5  # type: ignore[operator]


def test_retry_after_is_capped_at_one_day() -> None:
    assert next_delay((5.0,), 1, retry_after=30 * 86400.0) == MAX_RETRY_AFTER_SECONDS == 86400.0


def test_retry_after_does_not_extend_an_exhausted_schedule() -> None:
    assert next_delay((5.0,), 2, retry_after=60.0) is None


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        next_delay(DEFAULT_SCHEDULE, 0, None)


async def test_schedule_wait_drives_tenacity_retries() -> None:
    """The same strategy works in tenacity's own loop (e.g. for in-process retries)."""
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("receiver down")
        return "delivered"

    retrying = tenacity.AsyncRetrying(
        wait=schedule_wait((0.01, 0.02)), stop=tenacity.stop_after_attempt(3), reraise=True
    )
    assert await retrying(flaky) == "delivered"
    assert calls == 3
    assert 0.009 * 0.9 <= retrying.statistics["idle_for"] <= 0.03 * 1.1 + 0.001

"""Which Runpod error texts mean what: the worker cap, a hiccup worth retrying, or neither."""

from __future__ import annotations

import pytest

from visgate.providers.runpod.messages import is_quota, is_retryable

WORKER_CAP = [
    # The text Runpod sends (runpod/runpodctl issue #117).
    "Your worker concurrency cannot go beyond the maximum limit of (20). "
    "Please contact support if you wish to scale past this number.",
    "Max workers limit reached for this account",
    "You have exceeded your worker quota",
    "Worker limit exceeded",
    "Request exceeds the maximum number of workers allowed",
    "quota of serverless workers reached",
]
NOT_WORKER_CAP = [
    "name exceeds the maximum limit of 64 characters",
    "Network volume quota exceeded",
    "Storage quota reached",
    "gpuIds: maximum limit of 3 pools",
    "Worker image name exceeds the length limit",
    "workersMin cannot exceed workersMax",
    "Template name must be unique",
    "Something went wrong. Please try again later.",
]


@pytest.mark.parametrize("message", WORKER_CAP)
def test_worker_cap_wording_is_quota(message: str) -> None:
    assert is_quota(message)


@pytest.mark.parametrize("message", NOT_WORKER_CAP)
def test_other_limits_are_not_quota(message: str) -> None:
    assert not is_quota(message)


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("Something went wrong. Please try again later or contact support.", True),
        ("Something went wrong", True),
        ("Internal server error", True),
        ("Temporarily unavailable, try again in a minute", True),
        ("Template not found", False),
        ("Invalid gpuIds: NOT_A_POOL", False),
        ("Template name must be unique", False),
        ("Endpoint must have 0 min and max workers before deletion", False),
    ],
)
def test_only_runpods_hiccups_are_retryable(message: str, retryable: bool) -> None:
    assert is_retryable(message) is retryable

"""Each Runpod failure surfaces as the domain error type the reconciler acts on."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.domain.errors import (
    RunpodAPIError,
    RunpodAuthError,
    RunpodInsufficientGPUError,
    RunpodUnavailableError,
)
from visgate.providers.runpod import RunpodProvider


async def test_bad_key_is_an_auth_error_and_is_not_retried(
    provider: RunpodProvider, fake: RunningFakeRunpod
) -> None:
    with pytest.raises(RunpodAuthError) as caught:
        await provider.ensure_endpoint(make_spec(), api_key="rp_wrong_key")

    assert not caught.value.transient
    assert len(fake.state.calls) == 1


async def test_bad_key_on_the_endpoint_api_is_an_auth_error(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)

    with pytest.raises(RunpodAuthError):
        await provider.endpoint_health(ref.endpoint_id, api_key="rp_wrong_key")
    with pytest.raises(RunpodAuthError):
        await provider.submit_job(ref.endpoint_id, {"input": {}}, api_key="rp_wrong_key")


async def test_a_graphql_refusal_carries_runpods_message(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    with pytest.raises(RunpodAPIError, match="Invalid gpuIds: NOT_A_POOL") as caught:
        await provider.ensure_endpoint(make_spec(gpu_pools=["NOT_A_POOL"]), api_key=api_key)

    assert not caught.value.transient
    assert len(fake.state.calls_of("saveEndpoint")) == 1  # refused: not retried


async def test_worker_quota_is_insufficient_gpu(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.worker_quota = 3
    await provider.ensure_endpoint(make_spec("one", workers_max=2), api_key=api_key)

    with pytest.raises(RunpodInsufficientGPUError, match="maximum limit of \\(3\\)"):
        await provider.ensure_endpoint(make_spec("two", workers_max=2), api_key=api_key)

    assert fake.state.endpoint("visgate-two") is None


async def test_no_pools_at_all_is_insufficient_gpu(provider: RunpodProvider, api_key: str) -> None:
    with pytest.raises(RunpodInsufficientGPUError):
        await provider.ensure_endpoint(make_spec(gpu_pools=[]), api_key=api_key)


async def test_a_short_burst_of_5xx_is_retried_away(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.fail_next(2, 503)

    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)

    assert fake.state.endpoint(ref.name) is not None


async def test_a_long_burst_of_5xx_is_transient_unavailability(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.fail_next(10, 500)

    with pytest.raises(RunpodUnavailableError) as caught:
        await provider.list_endpoints(api_key=api_key)

    assert caught.value.transient
    assert len(fake.state.calls) == 3  # retry_attempts


async def test_429_waits_as_long_as_retry_after_says(
    make_provider: Callable[..., RunpodProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    provider = make_provider(max_retry_wait=5.0)
    fake.state.fail_next(1, 429, retry_after=1)
    started = time.monotonic()

    await provider.list_endpoints(api_key=api_key)

    assert time.monotonic() - started >= 0.9
    assert len(fake.state.calls) == 2
    await provider.aclose()


async def test_429_asking_longer_than_we_may_wait_is_handed_back_with_retry_after(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.fail_next(1, 429, retry_after=120)

    with pytest.raises(RunpodUnavailableError) as caught:
        await provider.gpu_types(api_key=api_key)

    assert caught.value.headers["Retry-After"] == "120"
    assert len(fake.state.calls) == 1


async def test_a_slow_runpod_times_out_as_unavailable(
    make_provider: Callable[..., RunpodProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    provider = make_provider(timeout=0.2, retry_attempts=2)
    fake.state.latency_s = 0.6

    with pytest.raises(RunpodUnavailableError, match=r"timeout|in time"):
        await provider.list_endpoints(api_key=api_key)
    await provider.aclose()


async def test_an_unreachable_runpod_is_unavailable(api_key: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    provider = RunpodProvider(f"{url}/graphql", f"{url}/v2", retry_attempts=2, max_retry_wait=0.01)

    with pytest.raises(RunpodUnavailableError):
        await provider.list_endpoints(api_key=api_key)
    with pytest.raises(RunpodUnavailableError):
        await provider.endpoint_health("abc", api_key=api_key)
    await provider.aclose()


async def test_endpoint_api_5xx_is_retried_for_reads(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)
    fake.state.fail_next(2, 502, surface="serverless")

    health = await provider.endpoint_health(ref.endpoint_id, api_key=api_key)

    assert health.workers.ready == 1


async def test_a_job_is_not_submitted_twice_after_an_ambiguous_5xx(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)
    fake.state.fail_next(1, 500, surface="serverless")

    with pytest.raises(RunpodUnavailableError):
        await provider.submit_job(ref.endpoint_id, {"input": {"text": "x"}}, api_key=api_key)

    runs = [c for c in fake.state.calls if c.path.endswith("/run")]
    assert len(runs) == 1


async def test_a_rate_limited_job_is_submitted_again(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)
    fake.state.fail_next(1, 429, retry_after=0, surface="serverless")

    queued = await provider.submit_job(ref.endpoint_id, {"input": {"text": "x"}}, api_key=api_key)

    assert queued["status"] in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")


async def test_template_still_in_use_after_retries_is_transient_and_a_later_teardown_finishes(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.template_release_lag = 4  # more refusals than retry_attempts (3)
    spec = make_spec()
    await provider.ensure_endpoint(spec, api_key=api_key)

    with pytest.raises(RunpodUnavailableError, match="in use"):
        await provider.teardown(spec.name, api_key=api_key)
    assert fake.state.endpoint(spec.name) is None

    await provider.teardown(spec.name, api_key=api_key)
    assert fake.state.template(spec.name) is None


HICCUP = "Something went wrong. Please try again later or contact support."


async def test_runpods_try_again_answer_is_retried_away(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.refuse_next(HICCUP, 2)

    listed = await provider.list_endpoints(api_key=api_key)

    assert listed == []
    assert len(fake.state.calls) == 3


async def test_a_try_again_answer_to_a_create_is_retried_after_a_fresh_lookup(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.refuse_next(HICCUP, 1, field="saveEndpoint")

    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)

    assert fake.state.creations("endpoint") == [ref.endpoint_id]
    assert len(fake.state.calls_of("saveEndpoint")) == 2


async def test_try_again_that_persists_is_transient_unavailability(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.refuse_next("Internal server error", 10)

    with pytest.raises(RunpodUnavailableError, match="Internal server error") as caught:
        await provider.list_endpoints(api_key=api_key)

    assert caught.value.transient
    assert len(fake.state.calls) == 3  # retry_attempts, then the reconciler's backoff


async def test_an_unrelated_limit_message_is_not_a_gpu_verdict(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.refuse_next("name exceeds the maximum limit of 64 characters", field="saveTemplate")

    with pytest.raises(RunpodAPIError, match="maximum limit of 64") as caught:
        await provider.ensure_endpoint(make_spec(), api_key=api_key)

    assert not isinstance(caught.value, RunpodInsufficientGPUError)
    assert len(fake.state.calls_of("saveTemplate")) == 1  # a refusal: not retried

"""One hub call per burst, cached successes, transient failures retried, bundles, offline."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from tests.fakes.hub import GATED_ACCESS_TOKEN, VALID_TOKEN, FakeHub
from tests.support.clock import ManualClock
from tests.support.waiting import eventually
from visgate.domain.errors import (
    HuggingFaceGatedModelError,
    HuggingFaceModelNotFoundError,
    HuggingFaceUnavailableError,
    HuggingFaceUnsupportedModelError,
)
from visgate.hub import HubValidator

MODEL = "stabilityai/sdxl-turbo"
INFO = f"/api/models/{MODEL}"


async def test_a_burst_of_identical_checks_makes_one_hub_call(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.latency_s = 0.2
    checks = await asyncio.gather(*(validator.check(MODEL, None) for _ in range(25)))
    assert {c.vram_gb for c in checks} == {10.0}
    assert hub.state.count(INFO) == 1


async def test_a_burst_of_gated_checks_makes_one_model_call_and_one_auth_check(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.latency_s = 0.1
    flux = "black-forest-labs/FLUX.1-dev"
    await asyncio.gather(*(validator.check(flux, GATED_ACCESS_TOKEN) for _ in range(10)))
    assert hub.state.count(f"/api/models/{flux}", method="GET") == 2  # info + auth-check
    assert hub.state.count("/auth-check") == 1


async def test_results_are_cached_per_token(hub: FakeHub, validator: HubValidator) -> None:
    await validator.check(MODEL, None)
    await validator.check(MODEL, None)
    assert hub.state.count(INFO) == 1
    await validator.check(MODEL, VALID_TOKEN)  # another token may see another answer
    assert hub.state.count(INFO) == 2
    await validator.check(MODEL, VALID_TOKEN)
    assert hub.state.count(INFO) == 2


async def test_the_cache_expires(hub: FakeHub) -> None:
    clock = ManualClock()
    validator = HubValidator(hub.url, cache_ttl_s=60, clock=clock)
    await validator.check(MODEL, None)
    clock.advance(59)
    await validator.check(MODEL, None)
    assert hub.state.count(INFO) == 1
    clock.advance(2)
    await validator.check(MODEL, None)
    assert hub.state.count(INFO) == 2


async def test_failures_are_not_cached(hub: FakeHub, validator: HubValidator) -> None:
    with pytest.raises(HuggingFaceModelNotFoundError):
        await validator.check("acme/new-model", None)
    hub.state.add_model("acme/new-model", siblings=[("model.safetensors", 10**9)])
    assert (await validator.check("acme/new-model", None)).vram_gb > 0


async def test_a_cancelled_caller_does_not_cancel_the_shared_call(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.latency_s = 0.2
    first = asyncio.create_task(validator.check(MODEL, None))
    second = asyncio.create_task(validator.check(MODEL, None))
    await eventually(lambda: hub.state.count(INFO) == 1, what="the shared call reaching the hub")
    first.cancel()
    assert (await second).vram_gb == 10.0
    assert hub.state.count(INFO) == 1


async def test_transient_errors_are_retried_then_succeed(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.fail_next(2, status=503)
    check = await validator.check(MODEL, None)
    assert check.vram_gb == 10.0
    assert hub.state.count(INFO) == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_a_hub_that_keeps_failing_is_unavailable_not_a_verdict(
    status: int, hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.fail_always(status)
    with pytest.raises(HuggingFaceUnavailableError) as raised:
        await validator.check(MODEL, None)
    assert raised.value.transient and str(status) in raised.value.message
    assert hub.state.count(INFO) == 3  # retry_attempts


async def test_retry_after_is_honoured_within_the_cap(hub: FakeHub) -> None:
    validator = HubValidator(hub.url, max_retry_wait=0.3, initial_retry_wait=0.001)
    hub.state.fail_next(1, status=429, retry_after="60")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await validator.check(MODEL, None)
    assert 0.25 <= loop.time() - started < 5  # waited, but the cap beat the hub's 60 s


async def test_a_slow_hub_times_out_as_unavailable(hub: FakeHub) -> None:
    validator = HubValidator(
        hub.url, timeout_s=0.1, retry_attempts=2, max_retry_wait=0.01, initial_retry_wait=0.001
    )
    hub.state.latency_s = 0.5
    with pytest.raises(HuggingFaceUnavailableError, match="in time"):
        await validator.check(MODEL, None)


async def test_an_unreachable_hub_is_unavailable() -> None:
    validator = HubValidator("http://127.0.0.1:9", retry_attempts=2, max_retry_wait=0.01)
    with pytest.raises(HuggingFaceUnavailableError, match="could not reach"):
        await validator.check(MODEL, None)


async def test_the_bundle_checks_every_component_once(
    hub: FakeHub, validator: HubValidator
) -> None:
    check = await validator.check("lumen/3d-pipeline", None)
    assert (check.source, check.vram_gb, check.kind) == ("registry", 21.7, "bundle")
    assert check.components == [
        "stabilityai/sdxl-turbo",
        "wgsxm/PartCrafter",
        "tencent/Hunyuan3D-2",
        "IDEA-Research/grounding-dino-tiny",
        "facebook/sam2.1-hiera-large",
    ]
    for component in check.components:
        assert hub.state.count(f"/api/models/{component}") == 1
    assert hub.state.count("/api/models/lumen/") == 0  # a deployable name, not a repo


async def test_a_missing_bundle_component_is_named(hub: FakeHub, validator: HubValidator) -> None:
    del hub.state.models["wgsxm/partcrafter"]
    with pytest.raises(HuggingFaceModelNotFoundError, match="component wgsxm/PartCrafter"):
        await validator.check("lumen/3d-pipeline", None)


async def test_a_gated_bundle_component_asks_for_a_token(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.models["facebook/sam2.1-hiera-large"].gated = "auto"
    with pytest.raises(HuggingFaceGatedModelError, match="hf_token"):
        await validator.check("lumen/3d-pipeline", None)


async def test_a_flaky_hub_during_a_bundle_check_is_transient(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.fail_always(503)
    with pytest.raises(HuggingFaceUnavailableError):
        await validator.check("lumen/3d-pipeline", None)


async def test_offline_the_registry_stands_alone(hub: FakeHub) -> None:
    validator = HubValidator(hub.url, offline=True)
    bundle = await validator.check("lumen/3d-pipeline", None)
    assert (bundle.vram_gb, bundle.source) == (21.7, "registry")
    flux = await validator.check("black-forest-labs/FLUX.1-dev", VALID_TOKEN)
    assert flux.gated and flux.vram_gb == 40.0
    with pytest.raises(HuggingFaceGatedModelError, match="hf_token"):
        await validator.check("black-forest-labs/FLUX.1-dev", None)
    with pytest.raises(HuggingFaceUnsupportedModelError, match="HF_HUB_OFFLINE"):
        await validator.check("Qwen/Qwen2.5-0.5B-Instruct", None)
    assert hub.requests == []


async def test_two_spellings_of_one_model_make_one_hub_call(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.add_model("acme/Mixed-Case", siblings=[("model.safetensors", 10**9)])
    hub.state.latency_s = 0.2
    lower, upper = await asyncio.gather(
        validator.check("acme/mixed-case", None), validator.check("ACME/Mixed-Case", None)
    )
    assert hub.state.count("/api/models/") == 1  # the hub knows both as one repo
    assert lower.vram_gb == upper.vram_gb
    assert (lower.model_id, upper.model_id) == ("acme/mixed-case", "ACME/Mixed-Case")


def _http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


async def test_an_http_date_retry_after_is_honoured_within_the_cap(hub: FakeHub) -> None:
    validator = HubValidator(hub.url, max_retry_wait=0.3, initial_retry_wait=0.001)
    hub.state.fail_next(1, status=429, retry_after=_http_date(60))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await validator.check(MODEL, None)
    assert 0.25 <= loop.time() - started < 5  # waited the cap, not the 1 ms backoff


async def test_an_http_date_retry_after_reaches_the_error_as_seconds(hub: FakeHub) -> None:
    validator = HubValidator(
        hub.url, retry_attempts=1, max_retry_wait=0.01, initial_retry_wait=0.001
    )
    hub.state.fail_always(503, retry_after=_http_date(120))
    with pytest.raises(HuggingFaceUnavailableError) as raised:
        await validator.check(MODEL, None)
    assert 100 <= int(raised.value.headers["Retry-After"]) <= 121


async def test_a_hanging_auth_check_fails_as_transient_and_frees_its_thread(
    hub: FakeHub,
) -> None:
    validator = HubValidator(
        hub.url, timeout_s=0.3, retry_attempts=2, max_retry_wait=0.01, initial_retry_wait=0.001
    )
    hub.state.hang("/auth-check")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(HuggingFaceUnavailableError, match="in time"):
        await validator.check("black-forest-labs/FLUX.1-dev", GATED_ACCESS_TOKEN)
    assert loop.time() - started < 2  # two 0.3 s timeouts, not an hour
    assert hub.state.count("/auth-check") == 2  # retry_attempts
    # Each hung request was dropped by the client's own timeout: no thread is left
    # blocked on a socket the hub never answers.
    await eventually(lambda: len(hub.state.hung_up) == 2, what="the hub seeing both hang-ups")
    assert hub.state.hung_up == ["/api/models/black-forest-labs/FLUX.1-dev/auth-check"] * 2

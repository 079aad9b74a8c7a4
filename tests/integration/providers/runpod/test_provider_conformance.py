"""One conformance suite for every Runpod backend of `GpuProvider` (GraphQL and REST v2):
the rules in providers/base.py, run through the same scenarios against the fake Runpod,
which serves both APIs over one account. A backend is only named where a fault is aimed
at one of its operations (`Backend.op`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.domain.errors import (
    RunpodAuthError,
    RunpodInsufficientGPUError,
    RunpodUnavailableError,
)
from visgate.providers.base import GpuProvider
from visgate.providers.runpod import RunpodProvider, RunpodRestProvider


@dataclass(frozen=True)
class Backend:
    name: str
    surface: str  # the fake's name for the API, for faults aimed at it
    ops: dict[str, str]  # our word for an operation → the fake's name for it

    def op(self, what: str) -> str:
        return self.ops[what]


GRAPHQL = Backend(
    "graphql",
    "graphql",
    {
        "create template": "saveTemplate",
        "create endpoint": "saveEndpoint",
        "delete endpoint": "deleteEndpoint",
        "delete template": "deleteTemplate",
    },
)
REST = Backend(
    "rest",
    "rest",
    {
        "create template": "createTemplate",
        "create endpoint": "createEndpoint",
        "delete endpoint": "deleteEndpoint",
        "delete template": "deleteTemplate",
    },
)


@pytest.fixture(params=[GRAPHQL, REST], ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
async def make(
    backend: Backend, fake: RunningFakeRunpod
) -> AsyncIterator[Callable[..., GpuProvider]]:
    """A fresh provider of the backend under test (as after a restart), fast retries."""
    made: list[GpuProvider] = []

    def build(**options: Any) -> GpuProvider:
        settings = {"timeout": 5.0, "retry_attempts": 3, "max_retry_wait": 0.02, **options}
        provider: GpuProvider
        if backend is REST:
            provider = RunpodRestProvider(fake.rest_url, fake.api_base, **settings)
        else:
            provider = RunpodProvider(fake.graphql_url, fake.api_base, **settings)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


def _deleted_in_order(fake: RunningFakeRunpod, backend: Backend) -> list[str]:
    wanted = {backend.op("delete endpoint"): "endpoint", backend.op("delete template"): "template"}
    return [wanted[f] for c in fake.state.calls for f in c.fields if f in wanted]


async def test_create_makes_one_endpoint_whose_worker_gets_the_env(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(workers_max=2)
    ref = await make().ensure_endpoint(spec, api_key=api_key, fresh=True)

    row = fake.state.endpoint(spec.name)
    assert row is not None and row["id"] == ref.endpoint_id
    assert ref.name == spec.name and ref.url.endswith(f"/v2/{ref.endpoint_id}")
    assert ref.gpu_pools == ["ADA_24", "AMPERE_24"]
    assert row["gpuIds"] == "ADA_24,AMPERE_24" and row["workersMax"] == 2
    assert fake.state.endpoint_env(spec.name) == spec.env
    assert fake.state.creations("template") and len(fake.state.creations("endpoint")) == 1


async def test_a_repeat_after_a_crash_finds_what_the_first_try_made(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    lost = await make().ensure_endpoint(spec, api_key=api_key, fresh=True)
    again = await make().ensure_endpoint(spec, api_key=api_key)
    found = await make().find_endpoint(spec.name, api_key=api_key)

    assert again.endpoint_id == lost.endpoint_id == (found and found.endpoint_id)
    assert fake.state.creations("endpoint") == [lost.endpoint_id]
    assert len(fake.state.creations("template")) == 1
    assert await make().find_endpoint("visgate-nobody", api_key=api_key) is None


@pytest.mark.parametrize("what", ["create template", "create endpoint"])
async def test_a_lost_answer_to_a_create_is_not_repeated(
    make: Callable[..., GpuProvider],
    fake: RunningFakeRunpod,
    backend: Backend,
    api_key: str,
    what: str,
) -> None:
    spec = make_spec()
    fake.state.lose_answer_next(backend.op(what))  # Runpod makes it, the answer is a 502

    ref = await make().ensure_endpoint(spec, api_key=api_key, fresh=True)

    assert fake.state.creations("endpoint") == [ref.endpoint_id]
    assert len(fake.state.creations("template")) == 1


async def test_a_failure_between_template_and_endpoint_is_finished_by_the_next_try(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, backend: Backend, api_key: str
) -> None:
    spec = make_spec()
    fake.state.fail_next(5, 503, surface=backend.surface, field=backend.op("create endpoint"))
    with pytest.raises(RunpodUnavailableError):
        await make().ensure_endpoint(spec, api_key=api_key, fresh=True)
    assert fake.state.template(spec.name) is not None and fake.state.endpoint(spec.name) is None

    ref = await make().ensure_endpoint(spec, api_key=api_key)
    assert fake.state.creations("endpoint") == [ref.endpoint_id]
    assert len(fake.state.creations("template")) == 1


async def test_teardown_deletes_the_endpoint_then_the_template_and_repeats_safely(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, backend: Backend, api_key: str
) -> None:
    spec = make_spec()
    fake.state.template_release_lag = 2  # Runpod frees the template a little later
    provider = make()
    await provider.ensure_endpoint(spec, api_key=api_key, fresh=True)

    await provider.teardown(spec.name, api_key=api_key)
    await provider.teardown(spec.name, api_key=api_key)  # gone already is success

    assert fake.state.endpoint(spec.name) is None and fake.state.template(spec.name) is None
    order = _deleted_in_order(fake, backend)
    assert order[0] == "endpoint" and order[-1] == "template"
    assert await provider.list_endpoints(api_key=api_key) == []


async def test_a_bad_key_is_an_auth_error_and_is_not_retried(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, backend: Backend
) -> None:
    with pytest.raises(RunpodAuthError) as caught:
        await make().ensure_endpoint(make_spec(), api_key="rp_wrong_key", fresh=True)
    assert "rp_wrong_key" not in caught.value.message
    assert len([c for c in fake.state.calls if c.surface == backend.surface]) == 1


async def test_the_account_worker_cap_is_insufficient_gpu(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.worker_quota = 1
    with pytest.raises(RunpodInsufficientGPUError, match=r"(?i)worker"):
        await make().ensure_endpoint(make_spec(workers_max=2), api_key=api_key, fresh=True)
    assert fake.state.endpoint(make_spec().name) is None


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_a_short_burst_of_429_or_5xx_is_retried_away(
    make: Callable[..., GpuProvider],
    fake: RunningFakeRunpod,
    backend: Backend,
    api_key: str,
    status: int,
) -> None:
    fake.state.fail_next(2, status, retry_after=0, surface=backend.surface)
    ref = await make().ensure_endpoint(make_spec(), api_key=api_key, fresh=True)
    assert fake.state.creations("endpoint") == [ref.endpoint_id]


async def test_a_long_burst_of_5xx_is_unavailability_the_caller_retries(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, backend: Backend, api_key: str
) -> None:
    fake.state.fail_next(10, 500, surface=backend.surface)
    with pytest.raises(RunpodUnavailableError):
        await make().list_endpoints(api_key=api_key)


async def test_429_asking_longer_than_we_may_wait_is_handed_back_with_retry_after(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, backend: Backend, api_key: str
) -> None:
    fake.state.fail_next(1, 429, retry_after=30, surface=backend.surface)
    with pytest.raises(RunpodUnavailableError) as caught:
        await make().list_endpoints(api_key=api_key)
    assert caught.value.headers.get("Retry-After") == "30"


async def test_widening_pools_keeps_every_other_setting(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(workers_max=2, gpu_pools=["ADA_24"])
    provider = make()
    ref = await provider.ensure_endpoint(spec, api_key=api_key, fresh=True)

    wider = replace(spec, gpu_pools=["ADA_24", "AMPERE_24", "AMPERE_48"])
    widened = await provider.set_gpu_pools(ref, wider, api_key=api_key)

    row = fake.state.endpoint(spec.name)
    assert widened.endpoint_id == ref.endpoint_id
    assert widened.gpu_pools == ["ADA_24", "AMPERE_24", "AMPERE_48"]
    assert row["gpuIds"] == "ADA_24,AMPERE_24,AMPERE_48" and row["workersMax"] == 2
    assert fake.state.endpoint_env(spec.name) == spec.env
    assert len(fake.state.creations("endpoint")) == 1


async def test_the_sweeper_sees_every_endpoint_and_the_catalogue_lists_gpus(
    make: Callable[..., GpuProvider], api_key: str
) -> None:
    provider = make()
    refs = [
        await provider.ensure_endpoint(make_spec(d), api_key=api_key, fresh=True)
        for d in ("d1", "d2")
    ]
    listed = await provider.list_endpoints(api_key=api_key)
    assert sorted(e.endpoint_id for e in listed) == sorted(r.endpoint_id for r in refs)
    assert {e.name for e in listed} == {"visgate-d1", "visgate-d2"}
    assert all(e.workers_max == 1 for e in listed)
    gpus = await provider.gpu_types(api_key=api_key)
    assert gpus and all(g.memory_gb > 0 for g in gpus)


async def test_an_endpoint_made_by_one_api_is_found_and_torn_down_by_the_other(
    fake: RunningFakeRunpod, api_key: str
) -> None:
    """Switching RUNPOD_API on a running install: existing endpoints keep working."""
    graphql = RunpodProvider(fake.graphql_url, fake.api_base, max_retry_wait=0.02)
    rest = RunpodRestProvider(fake.rest_url, fake.api_base, max_retry_wait=0.02)
    try:
        spec = make_spec()
        made = await graphql.ensure_endpoint(spec, api_key=api_key, fresh=True)
        found = await rest.find_endpoint(spec.name, api_key=api_key)
        assert found is not None and found.endpoint_id == made.endpoint_id
        again = await rest.ensure_endpoint(spec, api_key=api_key)
        assert again.endpoint_id == made.endpoint_id
        await rest.teardown(spec.name, api_key=api_key)
        assert fake.state.endpoint(spec.name) is None and fake.state.template(spec.name) is None
        assert fake.state.creations("endpoint") == [made.endpoint_id]
    finally:
        await graphql.aclose()
        await rest.aclose()


async def test_data_centres_reach_the_endpoint_and_survive_widening(
    make: Callable[..., GpuProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(data_center_ids=("EU-RO-1", "EU-SE-1"), gpu_pools=["ADA_24"])
    provider = make()
    ref = await provider.ensure_endpoint(spec, api_key=api_key, fresh=True)
    assert fake.state.endpoint(spec.name)["locations"] == "EU-RO-1,EU-SE-1"
    await provider.set_gpu_pools(
        ref, replace(spec, gpu_pools=["ADA_24", "AMPERE_48"]), api_key=api_key
    )
    assert fake.state.endpoint(spec.name)["locations"] == "EU-RO-1,EU-SE-1"


@pytest.mark.parametrize("billed_as", ["name", "id"])
async def test_spend_is_the_billed_figure_where_the_api_has_billing(
    make: Callable[..., GpuProvider],
    fake: RunningFakeRunpod,
    backend: Backend,
    api_key: str,
    billed_as: str,
) -> None:
    """Every backend answers None or USD >= 0; REST v2 reads Runpod's billing for the
    endpoint (None until a record exists), GraphQL has no billing query and says None."""
    spec = make_spec()
    provider = make()
    ref = await provider.ensure_endpoint(spec, api_key=api_key, fresh=True)
    since = time.time() - 60
    assert await provider.endpoint_spend(ref.endpoint_id, api_key=api_key, since=since) is None
    fake.state.billed[spec.name if billed_as == "name" else ref.endpoint_id] = 1.25
    fake.state.billed["visgate-someone-else"] = 9.0
    spend = await provider.endpoint_spend(ref.endpoint_id, api_key=api_key, since=since)
    assert spend is None or (isinstance(spend, float) and spend >= 0)
    assert spend == (1.25 if backend is REST else None)
    await provider.teardown(spec.name, api_key=api_key)  # billing outlives the endpoint
    after = await provider.endpoint_spend(ref.endpoint_id, api_key=api_key, since=since)
    assert after == spend


async def test_billing_errors_map_like_every_rest_call(
    fake: RunningFakeRunpod, api_key: str
) -> None:
    """A bad key is permanent; a 503 burst is retried, then handed back as unavailable."""
    provider = RunpodRestProvider(fake.rest_url, fake.api_base, max_retry_wait=0.02)
    try:
        with pytest.raises(RunpodAuthError):
            await provider.endpoint_spend("e1", api_key="rp_wrong_key", since=time.time())
        fake.state.fail_next(10, 503, surface="rest", field="listServerlessBilling")
        since = time.time()
        with pytest.raises(RunpodUnavailableError):
            await provider.endpoint_spend("e1", api_key=api_key, since=since)
        tries = fake.state.calls_of("listServerlessBilling")
        assert len(tries) == 1 + provider.policy.attempts  # the 401 once, the 503 retried
        asked = dict(parse_qsl(urlsplit(tries[-1].path).query))
        day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(since))  # snapped to the day
        assert asked == {"serverlessId": "e1", "startTime": day, "bucketSize": "day"}
    finally:
        await provider.aclose()

"""Every GpuProvider operation of the Runpod backend against the fake Runpod over loopback."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.domain.errors import NotFoundError, RunpodAPIError, ValidationError
from visgate.providers.base import GpuProvider
from visgate.providers.runpod import RunpodProvider


def test_provider_satisfies_the_protocol(provider: RunpodProvider) -> None:
    assert isinstance(provider, GpuProvider)


async def test_ensure_endpoint_creates_a_serverless_template_and_endpoint(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(workers_max=2, idle_timeout_s=30, container_disk_gb=25)

    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    template = fake.state.template(spec.name)
    endpoint = fake.state.endpoint(spec.name)
    assert template is not None and endpoint is not None
    assert template["imageName"] == spec.image
    assert template["isServerless"] is True
    assert template["volumeInGb"] == 0
    assert template["containerDiskInGb"] == 25
    assert fake.state.endpoint_env(spec.name) == spec.env
    assert endpoint["templateId"] == template["id"]
    assert endpoint["gpuIds"] == "ADA_24,AMPERE_24"
    assert (endpoint["workersMin"], endpoint["workersMax"]) == (0, 2)
    assert endpoint["idleTimeout"] == 30
    assert endpoint["flashBootType"] == "FLASHBOOT"
    assert endpoint["executionTimeoutMs"] == spec.execution_timeout_ms
    assert ref.endpoint_id == endpoint["id"]
    assert ref.template_id == template["id"]
    assert ref.url == f"{fake.api_base}/{endpoint['id']}"
    assert ref.gpu_pools == ["ADA_24", "AMPERE_24"]


async def test_values_travel_as_variables_so_quotes_in_env_survive(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    tricky = {"PROMPT": 'say "hi" } mutation { x }', "MULTI": "a\nb\\c", "EMPTY": ""}
    spec = make_spec(env=tricky)

    await provider.ensure_endpoint(spec, api_key=api_key)

    assert fake.state.endpoint_env(spec.name) == tricky
    for call in fake.state.calls_of("saveTemplate"):
        assert call.variables["input"]["name"] == spec.name  # sent as a variable


async def test_at_most_three_pools_are_sent_in_priority_order(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(gpu_pools=["AMPERE_16", "AMPERE_24", "ADA_24", "AMPERE_48"])

    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    assert fake.state.endpoint(spec.name)["gpuIds"] == "AMPERE_16,AMPERE_24,ADA_24"
    assert ref.gpu_pools == ["AMPERE_16", "AMPERE_24", "ADA_24"]


async def test_ensure_endpoint_twice_reuses_what_exists(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    first = await provider.ensure_endpoint(spec, api_key=api_key)
    second = await provider.ensure_endpoint(spec, api_key=api_key)

    assert second == first
    assert len(fake.state.creations("endpoint")) == 1
    assert len(fake.state.creations("template")) == 1
    assert len(fake.state.calls_of("saveTemplate")) == 1
    assert len(fake.state.calls_of("saveEndpoint")) == 1


def _graphql_fields(fake: RunningFakeRunpod) -> list[str]:
    return [f for c in fake.state.calls if c.path.startswith("/graphql") for f in c.fields]


async def test_a_fresh_create_makes_two_calls_and_no_look_ups(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key, fresh=True)

    assert _graphql_fields(fake) == ["saveTemplate", "saveEndpoint"]
    assert fake.state.endpoint(ref.name) is not None


async def test_a_fresh_create_that_meets_an_earlier_try_reuses_it(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    """Wrongly told `fresh` (the earlier try's marker was lost), Runpod's unique template
    names still stop a second endpoint: the clash sends the try through the look-ups."""
    spec = make_spec()
    first = await provider.ensure_endpoint(spec, api_key=api_key)
    again = await provider.ensure_endpoint(spec, api_key=api_key, fresh=True)

    assert again == first
    assert len(fake.state.creations("endpoint")) == 1
    assert len(fake.state.creations("template")) == 1


async def test_changed_image_updates_the_template_in_place(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    first = await provider.ensure_endpoint(spec, api_key=api_key)

    second = await provider.ensure_endpoint(
        replace(spec, image="ghcr.io/visgate/worker:1.1"), api_key=api_key
    )

    assert second.template_id == first.template_id
    assert second.endpoint_id == first.endpoint_id
    assert fake.state.template(spec.name)["imageName"] == "ghcr.io/visgate/worker:1.1"
    assert len(fake.state.creations("template")) == 1


async def test_find_endpoint_by_name(provider: RunpodProvider, api_key: str) -> None:
    spec = make_spec()
    assert await provider.find_endpoint(spec.name, api_key=api_key) is None

    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    assert await provider.find_endpoint(spec.name, api_key=api_key) == ref
    assert await provider.find_endpoint("visgate-other", api_key=api_key) is None


async def test_set_gpu_pools_keeps_every_other_setting(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    # The fake resets omitted fields on update, as Runpod does: a partial update would show.
    spec = make_spec(workers_max=2, idle_timeout_s=45, flashboot=True, scaler_value=7)
    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    widened = replace(spec, gpu_pools=["ADA_24", "AMPERE_24", "AMPERE_48"])
    new_ref = await provider.set_gpu_pools(ref, widened, api_key=api_key)

    endpoint = fake.state.endpoint(spec.name)
    assert endpoint["id"] == ref.endpoint_id
    assert endpoint["gpuIds"] == "ADA_24,AMPERE_24,AMPERE_48"
    assert endpoint["workersMax"] == 2
    assert endpoint["idleTimeout"] == 45
    assert endpoint["scalerValue"] == 7
    assert endpoint["flashBootType"] == "FLASHBOOT"
    assert endpoint["templateId"] == ref.template_id
    assert new_ref.gpu_pools == ["ADA_24", "AMPERE_24", "AMPERE_48"]
    assert len(fake.state.creations("endpoint")) == 1


async def test_health_shows_a_stall_on_full_pools_and_recovers_when_widened(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.pools_without_capacity = {"ADA_24", "AMPERE_24"}
    spec = make_spec()
    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    stalled = await provider.endpoint_health(ref.endpoint_id, api_key=api_key)
    assert stalled.workers.throttled > 0
    assert stalled.workers.stalled

    await provider.set_gpu_pools(
        ref, replace(spec, gpu_pools=["ADA_24", "AMPERE_24", "AMPERE_48"]), api_key=api_key
    )
    healthy = await provider.endpoint_health(ref.endpoint_id, api_key=api_key)
    assert not healthy.workers.stalled
    assert healthy.workers.ready == 1
    assert set(healthy.jobs) >= {"completed", "failed", "inProgress", "inQueue"}


async def test_teardown_scales_to_zero_resending_every_field_then_deletes(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(workers_min=1, workers_max=2)
    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    await provider.teardown(spec.name, api_key=api_key)

    assert fake.state.endpoint(spec.name) is None
    assert fake.state.template(spec.name) is None
    scale = fake.state.calls_of("saveEndpoint")[-1].variables["input"]
    assert scale["id"] == ref.endpoint_id
    assert (scale["workersMin"], scale["workersMax"]) == (0, 0)
    assert scale["templateId"] == ref.template_id
    assert scale["gpuIds"] == "ADA_24,AMPERE_24"
    assert scale["name"] == spec.name
    assert fake.state.calls_of("deleteEndpoint")[0].variables == {"id": ref.endpoint_id}
    assert fake.state.calls_of("deleteTemplate")[0].variables == {"templateName": spec.name}


async def test_teardown_of_what_is_gone_succeeds_and_changes_nothing(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    await provider.ensure_endpoint(spec, api_key=api_key)
    await provider.teardown(spec.name, api_key=api_key)
    mutations_before = len(fake.state.calls) - len(fake.state.calls_of("myself"))

    await provider.teardown(spec.name, api_key=api_key)
    await provider.teardown("visgate-never-existed", api_key=api_key)

    mutations_after = len(fake.state.calls) - len(fake.state.calls_of("myself"))
    assert mutations_after == mutations_before


async def test_teardown_waits_out_runpods_template_release_lag(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.template_release_lag = 2  # two "in use" answers after the endpoint is gone
    spec = make_spec()
    await provider.ensure_endpoint(spec, api_key=api_key)

    await provider.teardown(spec.name, api_key=api_key)

    assert fake.state.template(spec.name) is None
    assert len(fake.state.calls_of("deleteTemplate")) == 3


async def test_teardown_of_one_name_leaves_other_deployments_alone(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    await provider.ensure_endpoint(make_spec("one"), api_key=api_key)
    await provider.ensure_endpoint(make_spec("two"), api_key=api_key)

    await provider.teardown("visgate-one", api_key=api_key)

    assert fake.state.endpoint("visgate-two") is not None
    assert fake.state.template("visgate-two") is not None


async def test_list_endpoints_shows_every_endpoint_on_the_account(
    provider: RunpodProvider, api_key: str
) -> None:
    one = await provider.ensure_endpoint(make_spec("one", workers_max=2), api_key=api_key)
    two = await provider.ensure_endpoint(make_spec("two"), api_key=api_key)

    listed = {e.name: e for e in await provider.list_endpoints(api_key=api_key)}

    assert set(listed) == {"visgate-one", "visgate-two"}
    assert listed["visgate-one"].endpoint_id == one.endpoint_id
    assert listed["visgate-one"].template_id == one.template_id
    assert listed["visgate-one"].workers_max == 2
    assert listed["visgate-two"].gpu_pools == ["ADA_24", "AMPERE_24"]
    assert listed["visgate-two"].endpoint_id == two.endpoint_id


async def test_gpu_types_come_from_runpod(provider: RunpodProvider, api_key: str) -> None:
    types = {g.id: g for g in await provider.gpu_types(api_key=api_key)}

    assert types["NVIDIA L4"].memory_gb == 24.0
    assert types["NVIDIA L4"].display_name == "L4"


async def test_jobs_run_async_and_sync(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.job_handler = lambda job_input: {"mesh": f"{job_input['text']}.glb"}
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)

    done = await provider.submit_job(
        ref.endpoint_id, {"input": {"text": "a chair"}}, api_key=api_key, sync=True
    )
    assert done["status"] == "COMPLETED"
    assert done["output"] == {"mesh": "a chair.glb"}

    queued = await provider.submit_job(
        ref.endpoint_id, {"input": {"text": "a lamp"}}, api_key=api_key
    )
    assert queued["status"] == "IN_QUEUE"
    status = queued
    for _ in range(100):
        status = await provider.job_status(ref.endpoint_id, queued["id"], api_key=api_key)
        if status["status"] == "COMPLETED":
            break
    assert status["output"] == {"mesh": "a lamp.glb"}


async def test_a_queued_job_can_be_cancelled(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    fake.state.pools_without_capacity = {"ADA_24", "AMPERE_24"}  # the job cannot start
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)
    queued = await provider.submit_job(ref.endpoint_id, {"input": {"text": "x"}}, api_key=api_key)

    cancelled = await provider.cancel_job(ref.endpoint_id, queued["id"], api_key=api_key)

    assert cancelled["status"] == "CANCELLED"
    status = await provider.job_status(ref.endpoint_id, queued["id"], api_key=api_key)
    assert status["status"] == "CANCELLED"


async def test_job_errors_are_typed(provider: RunpodProvider, api_key: str) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)

    with pytest.raises(NotFoundError):
        await provider.job_status(ref.endpoint_id, "no-such-job", api_key=api_key)
    with pytest.raises(ValidationError, match="input"):
        await provider.submit_job(ref.endpoint_id, {"inputs": {}}, api_key=api_key)
    with pytest.raises(NotFoundError):
        await provider.endpoint_health("no-such-endpoint", api_key=api_key)


def test_one_provider_serves_successive_event_loops(fake: RunningFakeRunpod, api_key: str) -> None:
    # CLI commands call asyncio.run more than once with the same provider.
    provider = RunpodProvider(fake.graphql_url, fake.api_base, max_retry_wait=0.01)
    ref = asyncio.run(provider.ensure_endpoint(make_spec(), api_key=api_key))

    health = asyncio.run(provider.endpoint_health(ref.endpoint_id, api_key=api_key))
    listed = asyncio.run(provider.list_endpoints(api_key=api_key))
    asyncio.run(provider.aclose())

    assert health.workers.ready == 1
    assert [e.endpoint_id for e in listed] == [ref.endpoint_id]


async def test_teardown_still_sends_the_delete_when_scaling_to_zero_is_refused(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    # An endpoint whose template was deleted: Runpod refuses the scale-down with
    # "Template not found", which is about the template, not the endpoint.
    spec = make_spec(workers_min=1)
    ref = await provider.ensure_endpoint(spec, api_key=api_key)
    with fake.state.lock:
        fake.state.endpoints[ref.endpoint_id]["templateId"] = "deleted-template"

    with pytest.raises(RunpodAPIError, match="not deleted") as raised:
        await provider.teardown(spec.name, api_key=api_key)

    assert fake.state.calls_of("deleteEndpoint")[0].variables == {"id": ref.endpoint_id}
    assert fake.state.endpoint(spec.name) is not None  # still billing: not a success
    assert "Template not found" in raised.value.message


async def test_teardown_trusts_a_not_found_delete_only_when_the_listing_agrees(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    ref = await provider.ensure_endpoint(spec, api_key=api_key)
    fake.state.refuse_next("Endpoint not found", field="deleteEndpoint")  # yet it is there

    with pytest.raises(RunpodAPIError, match="not deleted"):
        await provider.teardown(spec.name, api_key=api_key)
    assert fake.state.endpoint(ref.endpoint_id) is not None

    await provider.teardown(spec.name, api_key=api_key)  # a later try finishes the job
    assert fake.state.endpoint(ref.endpoint_id) is None
    assert fake.state.template(spec.name) is None


async def test_a_registry_credential_reaches_the_template(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec(registry_auth_id="cred_7f3a")

    await provider.ensure_endpoint(spec, api_key=api_key)

    assert fake.state.template(spec.name)["containerRegistryAuthId"] == "cred_7f3a"


async def test_no_registry_credential_is_sent_unless_one_is_set(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()

    await provider.ensure_endpoint(spec, api_key=api_key)

    (save,) = fake.state.calls_of("saveTemplate")
    assert "containerRegistryAuthId" not in save.variables["input"]
    assert fake.state.template(spec.name).get("containerRegistryAuthId") is None

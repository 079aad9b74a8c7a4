"""A step retried after a crash, or after a lost answer, never makes a second endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.domain.errors import RunpodUnavailableError
from visgate.providers.runpod import RunpodProvider


async def test_crash_between_endpoint_created_and_id_recorded(
    make_provider: Callable[..., RunpodProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    before_crash = make_provider()
    lost_ref = await before_crash.ensure_endpoint(spec, api_key=api_key)
    await before_crash.aclose()  # the process dies before the ref reaches the store

    after_restart = make_provider()
    ref = await after_restart.ensure_endpoint(spec, api_key=api_key)
    await after_restart.aclose()

    assert ref == lost_ref
    assert fake.state.creations("endpoint") == [ref.endpoint_id]
    assert fake.state.creations("template") == [ref.template_id]


async def test_crash_between_template_and_endpoint_creation(
    make_provider: Callable[..., RunpodProvider], fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    fake.state.fail_next(5, 503, field="saveEndpoint")  # more than the retries
    first = make_provider()
    with pytest.raises(RunpodUnavailableError):
        await first.ensure_endpoint(spec, api_key=api_key)
    await first.aclose()
    assert fake.state.template(spec.name) is not None
    assert fake.state.endpoint(spec.name) is None

    second = make_provider()
    ref = await second.ensure_endpoint(spec, api_key=api_key)
    await second.aclose()

    assert fake.state.creations("template") == [ref.template_id]
    assert fake.state.creations("endpoint") == [ref.endpoint_id]


async def test_lost_answer_to_endpoint_creation_is_not_repeated(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    fake.state.lose_answer_next("saveEndpoint")  # Runpod creates it, the answer is a 502

    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    assert fake.state.creations("endpoint") == [ref.endpoint_id]
    assert fake.state.endpoint(spec.name)["id"] == ref.endpoint_id


async def test_lost_answer_to_template_creation_is_not_repeated(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    spec = make_spec()
    fake.state.lose_answer_next("saveTemplate")

    ref = await provider.ensure_endpoint(spec, api_key=api_key)

    assert fake.state.creations("template") == [ref.template_id]
    assert len(fake.state.creations("endpoint")) == 1


async def test_an_endpoint_left_on_an_old_template_is_moved_to_the_current_one(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    # A crash mid-teardown can leave the endpoint while its template was re-created.
    spec = make_spec()
    ref = await provider.ensure_endpoint(spec, api_key=api_key)
    with fake.state.lock:
        fake.state.endpoints[ref.endpoint_id]["templateId"] = "gone-template"

    again = await provider.ensure_endpoint(spec, api_key=api_key)

    assert again.endpoint_id == ref.endpoint_id
    assert fake.state.endpoint(spec.name)["templateId"] == again.template_id
    assert len(fake.state.creations("endpoint")) == 1

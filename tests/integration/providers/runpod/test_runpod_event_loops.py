"""A Runpod provider used from one event loop after another (the CLI calls `asyncio.run`
more than once with the same provider) closes each loop's connections: none is left for
the garbage collector to find open."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable

import pytest

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.providers.base import GpuProvider
from visgate.providers.runpod import RunpodProvider, RunpodRestProvider

PROVIDERS: dict[str, Callable[[RunningFakeRunpod], GpuProvider]] = {
    "graphql": lambda fake: RunpodProvider(fake.graphql_url, fake.api_base, max_retry_wait=0.01),
    "rest": lambda fake: RunpodRestProvider(fake.rest_url, fake.api_base, max_retry_wait=0.01),
}


@pytest.mark.parametrize("api", PROVIDERS)
def test_each_event_loops_connections_are_closed_not_leaked(
    fake: RunningFakeRunpod, api_key: str, api: str
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        provider = PROVIDERS[api](fake)
        ref = asyncio.run(provider.ensure_endpoint(make_spec(), api_key=api_key))
        health = asyncio.run(provider.endpoint_health(ref.endpoint_id, api_key=api_key))
        listed = asyncio.run(provider.list_endpoints(api_key=api_key))
        again = asyncio.run(provider.endpoint_health(ref.endpoint_id, api_key=api_key))
        del provider
        gc.collect()

    assert health.workers.ready == again.workers.ready == 1
    assert [e.endpoint_id for e in listed] == [ref.endpoint_id]
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []

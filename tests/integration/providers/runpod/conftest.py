"""The Runpod provider against the fake Runpod on loopback, with retries made fast."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.fakes.runpod import API_KEY, RunningFakeRunpod, run_fake_runpod
from visgate.providers.base import EndpointSpec
from visgate.providers.runpod import RunpodProvider


@pytest.fixture(scope="session")
def fake_server() -> Iterator[RunningFakeRunpod]:
    with run_fake_runpod() as running:
        yield running


@pytest.fixture
def fake(fake_server: RunningFakeRunpod) -> Iterator[RunningFakeRunpod]:
    """The shared server with a fresh, empty account. After the test, no answer of its REST
    API may have broken Runpod's OpenAPI document (state.contract_violations)."""
    fake_server.state.reset()
    yield fake_server
    assert fake_server.state.contract_violations == []


@pytest.fixture
def make_provider(fake: RunningFakeRunpod) -> Iterator[Callable[..., RunpodProvider]]:
    """A fresh provider (as after a restart); waits between retries stay in milliseconds."""
    made: list[RunpodProvider] = []

    def make(**options: Any) -> RunpodProvider:
        settings = {"timeout": 5.0, "retry_attempts": 3, "max_retry_wait": 0.02, **options}
        provider = RunpodProvider(fake.graphql_url, fake.api_base, **settings)
        made.append(provider)
        return provider

    yield make


@pytest.fixture
async def provider(make_provider: Callable[..., RunpodProvider]) -> AsyncIterator[RunpodProvider]:
    made = make_provider()
    yield made
    await made.aclose()


@pytest.fixture
def api_key() -> str:
    return API_KEY


def make_spec(deployment_id: str = "dep123", **changes: Any) -> EndpointSpec:
    fields: dict[str, Any] = {
        "name": f"visgate-{deployment_id}",
        "image": "ghcr.io/visgate/worker:1.0",
        "env": {
            "HF_MODEL_ID": "stabilityai/sdxl-turbo",
            "VISGATE_WEBHOOK": f"https://cp.example.com/internal/deployment-ready/{deployment_id}",
            "VISGATE_CALLBACK_TOKEN": "cb-token-xyz",
        },
        "gpu_pools": ["ADA_24", "AMPERE_24"],
    }
    fields.update(changes)
    return EndpointSpec(**fields)

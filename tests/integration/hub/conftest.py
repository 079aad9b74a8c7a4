"""One fake hub per module (fresh state per test) and a validator with fast retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.hub import FakeHub, run_fake_hub
from visgate.hub import HubValidator


@pytest.fixture(scope="module")
def hub_server() -> Iterator[FakeHub]:
    with run_fake_hub() as hub:
        yield hub


@pytest.fixture
def hub(hub_server: FakeHub) -> FakeHub:
    hub_server.state.reset()
    return hub_server


@pytest.fixture
def validator(hub: FakeHub) -> HubValidator:
    return HubValidator(hub.url, max_retry_wait=0.02, initial_retry_wait=0.001, timeout_s=2.0)

"""Registry tests use the static GPU table unless a test builds its own catalogue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from visgate.registry.catalogue import default_catalogue


@pytest.fixture(autouse=True)
def static_catalogue() -> Iterator[None]:
    default_catalogue.reset()
    yield
    default_catalogue.reset()

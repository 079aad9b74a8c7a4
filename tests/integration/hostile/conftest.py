"""Fixtures for the hostile-input suite: the API fixtures of tests/integration/api, plus an
API that refuses private webhook targets (the production default)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Api, api, make_api  # noqa: F401  (fixtures)


@pytest.fixture
async def strict_api(make_api: Any) -> Api:  # noqa: F811
    """WEBHOOK_ALLOW_PRIVATE_URLS=false, as in production."""
    return await make_api(WEBHOOK_ALLOW_PRIVATE_URLS=False)

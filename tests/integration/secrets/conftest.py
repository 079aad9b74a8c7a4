"""Secret stores under test: `local` on a temp dir, `secret-manager` against the gRPC fake."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

# gRPC core logs an INFO line when the fake stops under an idle client channel; noise only.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from tests.fakes.secret_manager import PROJECT, FakeSecretManager
from visgate.secrets.local import LocalSecretStore
from visgate.secrets.secret_manager import SecretManagerStore


@pytest.fixture
def fake_sm() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager().start()
    try:
        yield fake
    finally:
        fake.stop()


@contextlib.asynccontextmanager
async def open_sm_store(
    fake: FakeSecretManager, **options: Any
) -> AsyncIterator[SecretManagerStore]:
    """A store on a real async client bound to the fake; no waiting between retries."""
    client = fake.async_client()
    settings = {"backoff_s": 0, "attempts": 3, "timeout_s": 5, **options}
    store = SecretManagerStore(PROJECT, client=client, **settings)
    try:
        yield store
    finally:
        await store.aclose()
        await client.transport.close()


@pytest.fixture
async def sm_store(fake_sm: FakeSecretManager) -> AsyncIterator[SecretManagerStore]:
    async with open_sm_store(fake_sm) as store:
        yield store


@pytest.fixture(params=["local", "secret-manager"])
async def secret_store(
    request: pytest.FixtureRequest, tmp_path: Path, fake_sm: FakeSecretManager
) -> AsyncIterator[object]:
    if request.param == "local":
        store: object = LocalSecretStore(tmp_path / "secrets.db", None)
        yield store
        await store.aclose()  # type: ignore[attr-defined]
    else:
        async with open_sm_store(fake_sm) as sm:
            yield sm

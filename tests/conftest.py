"""Shared fixtures: the Firestore emulator (started once per run), store backends, settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.firestore_emulator import PROJECT, FirestoreEmulator


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    emulator = FirestoreEmulator().start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def document_backend(
    backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[object]:
    if backend_kind == "sqlite":
        from visgate.store.sqlite import SqliteBackend

        backend: object = SqliteBackend(tmp_path / "visgate.db")
    else:
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()
        from visgate.store.firestore import FirestoreBackend

        backend = FirestoreBackend(project=PROJECT)
    yield backend
    await backend.aclose()  # type: ignore[attr-defined]


@pytest.fixture
async def store(document_backend: object) -> AsyncIterator[object]:
    from visgate.store.repositories import Store

    yield Store(document_backend)  # type: ignore[arg-type]

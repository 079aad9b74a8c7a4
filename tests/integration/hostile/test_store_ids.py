"""Ids no deployment can have, on every route that takes one, on both stores: 404 in the
envelope. Firestore refuses some names outright (`..`, `__x__`, over 1500 bytes); before the
API checked the id's shape those reached the store and answered 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.integration.hostile.fuzzing import envelope_problem
from tests.support.firestore_emulator import PROJECT

HOSTILE_IDS = ["%2e%2e", "%2e", "__x__", "__name__", "x" * 2000, "%00", "%F0%9F%98%80", "a%20b"]
ROUTES = [
    ("GET", "/v1/deployments/{id}", None),
    ("DELETE", "/v1/deployments/{id}", None),
    ("GET", "/v1/deployments/{id}/events", None),
    ("POST", "/v1/deployments/{id}/jobs", {"input": {}}),
    ("GET", "/v1/deployments/{id}/jobs/j1", None),
]


@pytest.fixture
async def backend_api(make_api: Any, backend_kind: str, request: pytest.FixtureRequest) -> Api:
    if backend_kind == "firestore":
        emulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()
        return await make_api(STORE="firestore", GCP_PROJECT_ID=PROJECT)  # type: ignore[no-any-return]
    return await make_api()  # type: ignore[no-any-return]


async def test_hostile_ids_answer_404_on_every_store(backend_api: Api) -> None:
    api = backend_api
    for raw in HOSTILE_IDS:
        for method, template, body in ROUTES:
            path = template.replace("{id}", raw)
            resp = await api.client.request(method, path, json=body, headers=api.auth())
            assert resp.status_code == 404, (method, path[:60], resp.text[:200])
            assert envelope_problem(resp) is None
        callback = await api.client.post(
            f"/internal/deployment-ready/{raw}",
            json={"status": "ready"},
            headers={"Authorization": "Bearer " + api.services.callback_tokens.token(raw)},
        )
        assert callback.status_code in (401, 404), callback.text[:200]
    # A real id still works on the same store (the 404s are not a broken store).
    dep = (await api.post_deployment()).json()["deployment_id"]
    assert (await api.client.get(f"/v1/deployments/{dep}", headers=api.auth())).status_code == 200

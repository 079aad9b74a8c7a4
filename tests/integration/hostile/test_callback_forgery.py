"""Forged worker callbacks (`POST /internal/deployment-ready/{id}`, README, "The worker callback") never move a
deployment: a missing, wrong or borrowed token answers 401, an unknown id 404, and a valid
`ready` replayed after a delete is a no-op. Every check reads the record back through the
public API, which is what the user would see.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.integration.hostile.fuzzing import envelope_problem
from visgate.domain.status import Status

READY = {"status": "ready", "models_loaded": ["sdxl-turbo"], "vram_allocated_gb": 7.5, "gpu": "L4"}
FAILED = {"status": "failed", "error": "forged failure"}


async def _new(api: Api) -> str:
    resp = await api.post_deployment()
    assert resp.status_code == 202
    return str(resp.json()["deployment_id"])


async def _advance(api: Api, dep_id: str, *statuses: Status) -> None:
    """Walk the record through legal moves, as the reconciler would."""
    for status in statuses:

        def move(dep: Any, status: Status = status) -> bool:
            dep.move_to(status, time.time(), f"test: {status.value}")
            return True

        await api.services.store.deployments.mutate(dep_id, move)


async def _view(api: Api, dep_id: str) -> dict[str, Any]:
    resp = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    assert resp.status_code == 200
    return dict(resp.json())


async def _callback(api: Api, dep_id: str, body: dict[str, Any], auth: str | None) -> Any:
    headers = {} if auth is None else {"Authorization": auth}
    return await api.client.post(f"/internal/deployment-ready/{dep_id}", json=body, headers=headers)


@pytest.fixture
async def loading(api: Api) -> tuple[str, str]:
    """A deployment waiting for its worker, and a second one (for borrowed tokens)."""
    dep_id, other = await _new(api), await _new(api)
    walk = (Status.selecting_gpu, Status.creating_endpoint, Status.loading_model)
    await _advance(api, dep_id, *walk)
    await _advance(api, other, *walk)
    return dep_id, other


def _forged(api: Api, dep_id: str, other: str) -> dict[str, str | None]:
    token = api.services.callback_tokens.token(dep_id)
    return {
        "no-header": None,
        "empty": "",
        "bearer-empty": "Bearer ",
        "wrong": "Bearer " + "0" * 64,
        "other-deployment": "Bearer " + api.services.callback_tokens.token(other),
        "basic-scheme": "Basic " + token,
        "truncated": "Bearer " + token[:-1],
        "uppercased": "Bearer " + token.upper(),
        "api-key": f"Bearer {api.keys['alice'].api_key}",
    }


@pytest.mark.parametrize(
    "body", [READY, FAILED, {"status": "loading_model"}], ids=lambda b: b["status"]
)
async def test_forged_callbacks_answer_401_and_change_nothing(
    api: Api, loading: tuple[str, str], body: dict[str, Any]
) -> None:
    dep_id, other = loading
    before = await _view(api, dep_id)
    for name, auth in _forged(api, dep_id, other).items():
        resp = await _callback(api, dep_id, body, auth)
        assert resp.status_code == 401, (name, resp.text)
        assert envelope_problem(resp) is None
    after = await _view(api, dep_id)
    assert after["status"] == "loading_model"
    assert after == before  # not even a log line
    # The valid token works, so the 401s above were about the token alone.
    token = "Bearer " + api.services.callback_tokens.token(dep_id)
    assert (await _callback(api, dep_id, body, token)).json()["accepted"] is True


async def test_a_valid_token_for_an_unknown_deployment_answers_404(api: Api) -> None:
    ghost = "dep_ffffffffffffffff"
    resp = await _callback(api, ghost, READY, "Bearer " + api.services.callback_tokens.token(ghost))
    assert resp.status_code == 404
    assert envelope_problem(resp) is None


async def test_ready_replayed_is_a_no_op(api: Api, loading: tuple[str, str]) -> None:
    dep_id, _ = loading
    token = "Bearer " + api.services.callback_tokens.token(dep_id)
    first = await _callback(api, dep_id, READY, token)
    assert first.json() == {"deployment_id": dep_id, "status": "ready", "accepted": True}
    ready = await _view(api, dep_id)
    for body in (READY, FAILED, {"status": "loading_model"}):
        again = await _callback(api, dep_id, body, token)
        assert again.status_code == 200
        assert again.json()["accepted"] is False
    assert await _view(api, dep_id) == ready


@pytest.mark.parametrize("body", [READY, FAILED], ids=["ready", "failed"])
async def test_callback_replayed_after_delete_never_revives_the_deployment(
    api: Api, loading: tuple[str, str], body: dict[str, Any]
) -> None:
    dep_id, _ = loading
    token = "Bearer " + api.services.callback_tokens.token(dep_id)
    assert (
        await api.client.delete(f"/v1/deployments/{dep_id}", headers=api.auth())
    ).status_code == 204
    resp = await _callback(api, dep_id, body, token)
    assert resp.status_code == 200 and resp.json()["accepted"] is False
    assert (await _view(api, dep_id))["status"] == "deleting"
    await _advance(api, dep_id, Status.deleted)  # the reconciler finishes the teardown
    gone = await _view(api, dep_id)
    resp = await _callback(api, dep_id, body, token)
    assert resp.status_code in (200, 404)
    if resp.status_code == 200:
        assert resp.json()["accepted"] is False
    assert await _view(api, dep_id) == gone
    assert gone["status"] == "deleted"


async def test_ready_before_the_endpoint_is_recorded_moves_the_deployment_to_ready(
    api: Api,
) -> None:
    """A fast worker can call back while the record still reads creating_endpoint; the
    callback walks it through loading_model to ready in one write (was a 500)."""
    dep_id = await _new(api)
    await _advance(api, dep_id, Status.selecting_gpu, Status.creating_endpoint)
    token = "Bearer " + api.services.callback_tokens.token(dep_id)
    resp = await _callback(api, dep_id, READY, token)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"deployment_id": dep_id, "status": "ready", "accepted": True}
    view = await _view(api, dep_id)
    assert view["status"] == "ready" and view["ready_at"]
    assert [e["status"] for e in view["logs"]][-2:] == ["loading_model", "ready"]


@pytest.mark.parametrize("raw", [b"Bearer \xff", b"Bearer \xc3\xa9" + b"0" * 63, b"\xff"])
async def test_a_non_ascii_callback_token_answers_401(
    api: Api, loading: tuple[str, str], raw: bytes
) -> None:
    dep_id, _ = loading
    before = await _view(api, dep_id)
    resp = await api.client.post(
        f"/internal/deployment-ready/{dep_id}", json=READY, headers={"Authorization": raw}
    )
    assert resp.status_code == 401, resp.text
    assert envelope_problem(resp) is None
    assert await _view(api, dep_id) == before

"""Every /v1 route, SSE and jobs included, against every kind of bad credential.

README, "API": a missing, malformed, wrong or revoked key answers 401 (with
`WWW-Authenticate: Bearer`); another tenant's key answers 404 for a deployment it does not
own, exactly as for a missing one, so ids do not leak across tenants.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.integration.hostile.fuzzing import envelope_problem
from visgate.auth.api_keys import issue_key, revoke_key

JOB = "job-123"
DEP = "{dep}"

# (method, path template, JSON body); `{dep}` is a deployment owned by alice.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/deployments", {"hf_model_id": "stabilityai/sdxl-turbo"}),
    ("GET", "/v1/deployments", None),
    ("GET", f"/v1/deployments/{DEP}", None),
    ("DELETE", f"/v1/deployments/{DEP}", None),
    ("GET", f"/v1/deployments/{DEP}/events", None),
    ("POST", f"/v1/deployments/{DEP}/jobs", {"input": {"text": "a chair"}}),
    ("POST", f"/v1/deployments/{DEP}/jobs/sync", {"input": {"text": "a chair"}}),
    ("GET", f"/v1/deployments/{DEP}/jobs/{JOB}", None),
    ("POST", f"/v1/deployments/{DEP}/jobs/{JOB}/cancel", None),
    ("GET", "/v1/models", None),
    ("GET", "/v1/gpus", None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]
OWNED_ROUTES = [r for r in ROUTES if DEP in r[1]]

BAD_HEADERS: dict[str, dict[str, str]] = {
    "none": {},
    "empty": {"Authorization": ""},
    "bearer-only": {"Authorization": "Bearer"},
    "bearer-blank": {"Authorization": "Bearer    "},
    "basic": {"Authorization": "Basic x"},
    "basic-userpass": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    "garbage": {"Authorization": "\x7f\x01garbage"},
    "unknown-key": {"Authorization": "Bearer vg_live_not_a_real_key"},
    "token-header": {"X-API-Key": "whatever"},
}


async def _call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return await api.client.request(method, path, json=body, headers=headers)


def assert_unauthorized(resp: Any) -> None:
    assert resp.status_code == 401, resp.text
    assert envelope_problem(resp) is None, envelope_problem(resp)
    assert resp.json()["error"]["type"] == "UnauthorizedError"
    assert resp.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.fixture
async def dep_id(api: Api) -> str:
    resp = await api.post_deployment()
    assert resp.status_code == 202
    return str(resp.json()["deployment_id"])


@pytest.mark.parametrize("header", list(BAD_HEADERS), ids=list(BAD_HEADERS))
async def test_bad_credentials_answer_401_on_every_route(
    api: Api, dep_id: str, header: str
) -> None:
    for method, template, body in ROUTES:
        path = template.replace(DEP, dep_id)
        resp = await _call(api, method, path, body, BAD_HEADERS[header])
        assert_unauthorized(resp)
    # Nothing a refused caller sent had an effect.
    listing = await api.client.get("/v1/deployments", headers=api.auth())
    assert [d["deployment_id"] for d in listing.json()["items"]] == [dep_id]
    assert listing.json()["items"][0]["status"] == "validating"


async def test_a_valid_key_with_a_trailing_word_is_not_accepted(api: Api, dep_id: str) -> None:
    headers = {"Authorization": f"Bearer {api.keys['alice'].api_key} extra"}
    assert_unauthorized(await api.client.get(f"/v1/deployments/{dep_id}", headers=headers))


async def test_revoked_key_answers_401_on_every_route(
    api: Api, dep_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import visgate.api.deps as deps

    monkeypatch.setattr(deps, "_AUTH_CACHE_TTL_S", 0.0)  # the cache window has its own test
    carol = await issue_key(api.services, "carol", tenant="alice")
    headers = {"Authorization": f"Bearer {carol.api_key}"}
    # Same tenant as alice: before revocation carol's key reads alice's deployment.
    assert (await api.client.get(f"/v1/deployments/{dep_id}", headers=headers)).status_code == 200
    await revoke_key(api.services, "carol")
    for method, template, body in ROUTES:
        resp = await _call(api, method, template.replace(DEP, dep_id), body, headers)
        assert_unauthorized(resp)
    got = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    assert got.json()["status"] == "validating"


async def test_revocation_takes_effect_within_the_auth_cache_ttl(api: Api, dep_id: str) -> None:
    """The key lookup is cached briefly per process; a revoked key must stop working once
    that window passes, without a restart."""
    import visgate.api.deps as deps

    now = [time.monotonic()]
    api.app.state.auth_clock = lambda: now[0]
    carol = await issue_key(api.services, "carol", tenant="alice")
    headers = {"Authorization": f"Bearer {carol.api_key}"}
    assert (await api.client.get("/v1/deployments", headers=headers)).status_code == 200
    await revoke_key(api.services, "carol")
    assert (await api.client.get("/v1/deployments", headers=headers)).status_code == 200
    now[0] += deps._AUTH_CACHE_TTL_S
    assert_unauthorized(await api.client.get("/v1/deployments", headers=headers))


@pytest.mark.parametrize(("method", "template", "body"), OWNED_ROUTES, ids=ROUTE_IDS[2:9])
async def test_another_tenants_key_answers_404_like_a_missing_id(
    api: Api, dep_id: str, method: str, template: str, body: Any
) -> None:
    theirs = await _call(api, method, template.replace(DEP, dep_id), body, api.auth("bob"))
    missing = await _call(
        api, method, template.replace(DEP, "dep_0000000000000000"), body, api.auth("bob")
    )
    assert theirs.status_code == 404, theirs.text
    assert envelope_problem(theirs) is None
    assert theirs.json()["error"]["type"] == "DeploymentNotFoundError"
    # Indistinguishable from an id that does not exist (same type, same wording).
    assert missing.status_code == 404
    assert theirs.json()["error"]["message"].replace(dep_id, "X") == missing.json()["error"][
        "message"
    ].replace("dep_0000000000000000", "X")
    # bob's DELETE or job call changed nothing for alice.
    mine = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    assert mine.status_code == 200 and mine.json()["status"] == "validating"


async def test_another_tenants_list_does_not_show_the_deployment(api: Api, dep_id: str) -> None:
    resp = await api.client.get("/v1/deployments", headers=api.auth("bob"))
    assert resp.status_code == 200
    assert resp.json()["items"] == []

"""Cross-site request forgery: a change made with the session cookie needs the session's CSRF
token (a form's `csrf_token` field, `X-CSRF-Token` on `/v1`), so a request another site
makes the browser send changes nothing. Reads need no token, and bearer-key callers are not
affected at all."""

from __future__ import annotations

import pytest

from tests.integration.console.conftest import Browser, Console
from visgate.domain.status import Status

MODEL = "stabilityai/sdxl-turbo"


async def alice_and_bob(console: Console) -> tuple[Browser, Browser]:
    return await console.browser("alice"), await console.browser("bob")


def wrong_token(kind: str, alice: Browser, bob: Browser) -> str | None:
    """The CSRF token a forged request carries: none, blank, made up, another session's, or
    the session cookie's own value (which no page script can read anyway)."""
    return {
        "none": None,
        "blank": "",
        "made-up": "0" * 64,
        "another session's": bob.csrf,
        "the cookie itself": alice.session_token,
    }[kind]


WRONG = ["none", "blank", "made-up", "another session's", "the cookie itself"]


async def count(console: Console, tenant: str = "alice") -> int:
    page = await console.api.services.store.deployments.list(tenant=tenant, limit=100)
    return len(page.items)


async def alice_deployment(console: Console) -> str:
    resp = await console.api.post_deployment("alice")
    assert resp.status_code == 202
    return str(resp.json()["deployment_id"])


async def status_of(console: Console, dep_id: str) -> Status:
    return (await console.api.services.store.deployments.get(dep_id)).status


@pytest.mark.parametrize("kind", WRONG)
async def test_the_create_form_without_the_sessions_token_creates_nothing(
    console: Console, kind: str
) -> None:
    alice, bob = await alice_and_bob(console)

    answer = await alice.post_form(
        "/console/deployments/new",
        {"hf_model_id": MODEL, "max_workers": "1"},
        csrf=wrong_token(kind, alice, bob),
    )

    assert answer.status_code == 403
    assert "ForbiddenError" in answer.text and "reload the page" in answer.text
    assert await count(console) == 0
    # The same form with the page's token goes through.
    assert (
        await alice.post_form("/console/deployments/new", {"hf_model_id": MODEL})
    ).status_code == 303
    assert await count(console) == 1


@pytest.mark.parametrize("kind", WRONG)
async def test_the_delete_form_without_the_sessions_token_deletes_nothing(
    console: Console, kind: str
) -> None:
    alice, bob = await alice_and_bob(console)
    dep_id = await alice_deployment(console)
    path = f"/console/deployments/{dep_id}/delete"

    answer = await alice.post_form(path, csrf=wrong_token(kind, alice, bob))

    assert answer.status_code == 403
    assert "ForbiddenError" in answer.text
    assert await status_of(console, dep_id) is Status.validating
    ok = await alice.post_form(path)
    assert ok.status_code == 303 and ok.headers["location"] == f"/console/deployments/{dep_id}"
    assert await status_of(console, dep_id) in (Status.deleting, Status.deleted)


@pytest.mark.parametrize("kind", WRONG)
async def test_v1_changes_with_the_cookie_need_the_csrf_header(console: Console, kind: str) -> None:
    alice, bob = await alice_and_bob(console)
    dep_id = await alice_deployment(console)
    token = wrong_token(kind, alice, bob)
    forged = {} if token is None else {"X-CSRF-Token": token}

    created = await alice.client.post(
        "/v1/deployments", json={"hf_model_id": MODEL}, headers=forged
    )
    deleted = await alice.client.delete(f"/v1/deployments/{dep_id}", headers=forged)
    job = await alice.client.post(
        f"/v1/deployments/{dep_id}/jobs", json={"input": {"prompt": "x"}}, headers=forged
    )

    for answer in (created, deleted, job):
        assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["type"] == "ForbiddenError" and "X-CSRF-Token" in error["message"]
    assert await count(console) == 1
    assert await status_of(console, dep_id) is Status.validating


async def test_v1_changes_with_the_cookie_and_the_pages_token_go_through(
    console: Console,
) -> None:
    alice = await console.browser("alice")
    dep_id = await alice_deployment(console)
    headers = {"X-CSRF-Token": alice.csrf}

    created = await alice.client.post(
        "/v1/deployments", json={"hf_model_id": MODEL}, headers=headers
    )
    assert created.status_code == 202
    new_id = created.json()["deployment_id"]
    assert (await console.api.services.store.deployments.get(new_id)).tenant == "alice"
    deleted = await alice.client.delete(f"/v1/deployments/{dep_id}", headers=headers)
    assert deleted.status_code == 204
    assert await status_of(console, dep_id) in (Status.deleting, Status.deleted)


async def test_reads_with_the_cookie_need_no_token(console: Console) -> None:
    alice = await console.browser("alice")
    dep_id = await alice_deployment(console)

    listed = await alice.client.get("/v1/deployments")
    one = await alice.client.get(f"/v1/deployments/{dep_id}")
    deliveries = await alice.client.get(f"/v1/deployments/{dep_id}/deliveries")

    assert listed.status_code == 200
    assert [d["deployment_id"] for d in listed.json()["items"]] == [dep_id]
    assert one.status_code == 200 and one.json()["deployment_id"] == dep_id
    assert deliveries.status_code == 200


async def test_bearer_requests_need_no_csrf_token_and_ignore_any_cookie(
    console: Console,
) -> None:
    api = console.api
    alice = await console.browser("alice")

    plain = await api.post_deployment("bob")
    assert plain.status_code == 202
    # A bearer request that also carries alice's session cookie (same browser, a script
    # using its own key) acts as the key's tenant and needs no CSRF token.
    with_cookie = await alice.client.post(
        "/v1/deployments", json={"hf_model_id": MODEL}, headers=api.auth("bob")
    )
    assert with_cookie.status_code == 202
    dep_id = with_cookie.json()["deployment_id"]
    assert (await api.services.store.deployments.get(dep_id)).tenant == "bob"
    assert await count(console, "alice") == 0
    gone = await alice.client.delete(f"/v1/deployments/{dep_id}", headers=api.auth("bob"))
    assert gone.status_code == 204
    # A bad bearer key is not rescued by a good cookie.
    refused = await alice.client.get(
        "/v1/deployments", headers={"Authorization": "Bearer vg_not_a_key"}
    )
    assert refused.status_code == 401

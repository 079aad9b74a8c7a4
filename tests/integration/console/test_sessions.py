"""How a console session ends: at its expiry, when its API key is revoked (within the key
cache's 5 s), and at sign-out; once ended, neither the pages nor `/v1` accept its cookie."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.console.conftest import Browser, Console, set_cookies
from visgate.api.ratelimit import MemoryRateLimiter
from visgate.auth.api_keys import revoke_key
from visgate.auth.console_sessions import session_id
from visgate.store.console_sessions import CONSOLE_SESSIONS

SESSION_SECONDS = 60


async def stored(console: Console, browser: Browser) -> dict[str, Any] | None:
    return await console.api.services.store.backend.get(
        CONSOLE_SESSIONS, session_id(browser.session_token)
    )


async def assert_session_works(browser: Browser) -> None:
    page = await browser.get("/console/deployments")
    assert page.status_code == 200, page.headers
    assert f'title="Signed in as">{browser.name}<' in page.text
    assert (await browser.get("/v1/deployments")).status_code == 200


async def assert_session_ended(client: httpx.AsyncClient, token: str) -> None:
    """Pages lead to sign-in, and `/v1` answers 401, for a browser still presenting `token`."""
    replay = {"Cookie": f"visgate_session={token}"}
    page = await client.get("/console/deployments/new", headers=replay)
    assert page.status_code == 303
    assert page.headers["location"] == "/console/sign-in?next=/console/deployments/new"
    listed = await client.get("/v1/deployments", headers=replay)
    assert listed.status_code == 401
    assert listed.json()["error"]["type"] == "UnauthorizedError"
    changed = await client.post(
        "/v1/deployments", json={"hf_model_id": "stabilityai/sdxl-turbo"}, headers=replay
    )
    assert changed.status_code == 401


async def test_an_expired_session_leads_to_sign_in_and_v1_refuses_it(
    make_console: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    console: Console = await make_console(VISGATE_CONSOLE_SESSION_SECONDS=SESSION_SECONDS)
    browser = await console.browser("alice")
    token = browser.session_token
    sessions = console.api.services.store.console_sessions

    monkeypatch.setattr(sessions, "clock", lambda: time.time() + SESSION_SECONDS - 5)
    await assert_session_works(browser)

    monkeypatch.setattr(sessions, "clock", lambda: time.time() + SESSION_SECONDS + 1)
    page = await browser.get("/console/deployments")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/sign-in?next=/console/deployments"
    # The browser is told to drop the dead cookie.
    assert set_cookies(page)["visgate_session"]["max-age"] == "0"
    await assert_session_ended(console.client(), token)
    # Signing in again starts a fresh session (sign-in stamps sessions with the wall clock,
    # not the store's, so the store's clock is put back first).
    monkeypatch.setattr(sessions, "clock", time.time)
    again = await console.browser("alice")
    await assert_session_works(again)


async def test_revoking_the_key_ends_its_sessions_within_the_key_cache_time(
    console: Console,
) -> None:
    api = console.api
    alice = await console.browser("alice")
    token = alice.session_token
    bob = await console.browser("bob")
    await assert_session_works(alice)

    await revoke_key(api.services, "alice")
    await assert_session_works(alice)  # the key cache still holds it, for at most 5 s
    api.app.state.auth_clock = lambda: time.monotonic() + 6  # past the cache's 5 s

    page = await alice.get("/console/deployments")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/sign-in?next=/console/deployments"
    assert await api.services.store.backend.get(CONSOLE_SESSIONS, session_id(token)) is None
    await assert_session_ended(console.client(), token)
    bearer = await api.client.get("/v1/deployments", headers=api.auth("alice"))
    assert bearer.status_code == 401
    await assert_session_works(bob)  # another key's session is untouched


async def test_sign_out_ends_the_session_and_its_cookie(console: Console) -> None:
    alice = await console.browser("alice")
    token = alice.session_token

    answer = await alice.post_form("/console/sign-out")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
    assert set_cookies(answer)["visgate_session"]["max-age"] == "0"
    assert "visgate_session" not in alice.client.cookies
    assert await console.api.services.store.backend.get(CONSOLE_SESSIONS, session_id(token)) is None
    # A copy of the cookie kept elsewhere (stolen, or another tab) is dead too.
    await assert_session_ended(console.client(), token)
    # The key itself still works: sign-out ends a session, not the key.
    assert (await console.api.client.get("/v1/deployments", headers=console.api.auth())).is_success


@pytest.mark.parametrize("token", ["none", "blank", "bob's"])
async def test_sign_out_without_the_sessions_token_is_refused_and_changes_nothing(
    console: Console, token: str
) -> None:
    alice = await console.browser("alice")
    bob = await console.browser("bob")
    csrf = {"none": None, "blank": "", "bob's": bob.csrf}[token]

    answer = await alice.post_form("/console/sign-out", csrf=csrf)

    assert answer.status_code == 403
    assert "ForbiddenError" in answer.text
    assert "visgate_session" not in set_cookies(answer)
    assert await stored(console, alice) is not None
    await assert_session_works(alice)
    await assert_session_works(bob)


async def test_made_up_session_cookies_meet_429_before_any_store_read(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random `visgate_session` cookies cost a store read each, like unknown bearer keys; past
    the per-address budget (20 here) they are refused before the store is asked."""
    api = console.api
    api.app.state.auth_failures = MemoryRateLimiter(20)
    reads: list[str] = []
    sessions = api.services.store.console_sessions
    original = sessions.get

    async def counted(session_id: str) -> Any:
        reads.append(session_id)
        return await original(session_id)

    monkeypatch.setattr(sessions, "get", counted)
    client = console.client()
    answers = []
    for i in range(25):
        client.cookies.set("visgate_session", f"made-up-{i}")
        answers.append(await client.get("/v1/deployments"))

    assert [a.status_code for a in answers[:20]] == [401] * 20
    assert {a.status_code for a in answers[20:]} == {429}
    assert "retry-after" in answers[-1].headers
    assert len(reads) == 20

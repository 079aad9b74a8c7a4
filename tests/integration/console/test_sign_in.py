"""Signing in to the console as a user and as an attacker sees it: the cookie it sets, what
never leaves the server (the API key), what a wrong, revoked or forged sign-in gets, where a
sign-in may send the browser next, and the limit on guessing keys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.console.conftest import (
    Console,
    assert_page_headers,
    csrf_of,
    set_cookies,
    sign_in,
    sign_in_token,
)
from visgate.api.ratelimit import MemoryRateLimiter
from visgate.auth.api_keys import revoke_key
from visgate.auth.console_sessions import session_id
from visgate.domain.records import hash_api_key

SESSION_SECONDS = 600
UNKNOWN_OR_REVOKED = "That API key is unknown or revoked."


def stored_sessions(db_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The console session rows as SQLite holds them: (id, document)."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT id, body FROM documents WHERE kind = 'console_sessions'"
        ).fetchall()
    finally:
        conn.close()
    return [(row[0], json.loads(row[1])) for row in rows]


async def test_a_good_key_lands_on_next_with_a_strict_http_only_session_cookie(
    make_console: Any,
) -> None:
    console: Console = await make_console(VISGATE_CONSOLE_SESSION_SECONDS=SESSION_SECONDS)
    client = console.client()

    answer = await sign_in(client, console.api.keys["alice"].api_key, next_path="/console/models")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/models"
    assert_page_headers(answer)
    cookie = set_cookies(answer)["visgate_session"]
    assert cookie["value"]
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(SESSION_SECONDS)
    assert "secure" not in cookie  # plain http, no proxy saying otherwise
    # The sign-in form's own cookie is spent.
    assert set_cookies(answer)["visgate_sign_in"]["max-age"] == "0"

    page = await client.get("/console/models")
    assert page.status_code == 200
    assert 'class="tenant" title="Signed in as">alice<' in page.text
    assert csrf_of(page.text)


@pytest.mark.parametrize(
    ("hops", "forwarded_proto", "base_url", "secure"),
    [
        (1, "https", "http://visgate.test", True),  # Cloud Run's front end ended TLS
        (1, None, "http://visgate.test", False),
        (0, None, "http://visgate.test", False),  # nothing in front, plain http
        (0, "https", "http://visgate.test", False),  # a forged header, no proxy to trust
        (0, None, "https://visgate.test", True),  # TLS straight to us
    ],
)
async def test_the_session_cookie_is_secure_exactly_when_the_browser_used_https(
    make_console: Any, hops: int, forwarded_proto: str | None, base_url: str, secure: bool
) -> None:
    console: Console = await make_console(VISGATE_TRUSTED_PROXY_HOPS=hops)
    headers = {"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {}
    # A Secure cookie is not sent back over http by httpx, so the form's cookie is sent by hand.
    form = await console.client(base_url).get("/console/sign-in", headers=headers)
    form_cookie = set_cookies(form)["visgate_sign_in"]
    assert ("secure" in form_cookie) is secure
    assert form_cookie["path"] == "/console/sign-in"
    assert "httponly" in form_cookie and form_cookie["samesite"].lower() == "strict"

    answer = await console.client(base_url).post(
        "/console/sign-in",
        data={
            "sign_in_token": sign_in_token(form.text),
            "api_key": console.api.keys["alice"].api_key,
        },
        headers={**headers, "Cookie": f"visgate_sign_in={form_cookie['value']}"},
    )

    assert answer.status_code == 303, answer.text
    cookie = set_cookies(answer)["visgate_session"]
    assert ("secure" in cookie) is secure
    assert "httponly" in cookie and cookie["samesite"].lower() == "strict"


async def test_the_api_key_never_leaves_the_server_and_the_store_holds_only_a_hash(
    console: Console,
) -> None:
    api = console.api
    key = api.keys["alice"].api_key
    wrong = "vg_" + "W" * 43  # a key-shaped guess: not echoed either
    seen: list[httpx.Response] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)

    client = console.client(event_hooks={"response": [record]})
    assert (await sign_in(client, wrong)).status_code == 401
    answer = await sign_in(client, key, next_path="/console/deployments/new")
    assert answer.status_code == 303
    token = client.cookies["visgate_session"]
    csrf = csrf_of((await client.get("/console/deployments/new")).text)
    created = await client.post(
        "/console/deployments/new",
        data={"csrf_token": csrf, "hf_model_id": "stabilityai/sdxl-turbo", "max_workers": "1"},
    )
    assert created.status_code == 303
    dep_page = created.headers["location"]
    for path in (
        "/console/deployments",
        dep_page,
        f"{dep_page}/delete",
        f"{dep_page}/playground",
        "/console/models",
        "/console/gpus",
        "/console/deployments/dep_0000000000000000",
    ):
        await client.get(path)
    assert (await client.post("/console/sign-out", data={"csrf_token": csrf})).status_code == 303

    assert len(seen) >= 14
    for response in seen:
        for secret in (key, wrong):
            assert secret not in response.text, response.request.url
            assert secret not in str(response.request.url)
            for name, value in response.headers.items():
                assert secret not in value, (response.request.url, name)
    # The cookie is a token of its own, not the key nor its hash.
    assert token != key and key not in token and hash_api_key(key) not in token

    # The store: one session (sign-out deleted it, so sign in again and read it raw).
    again = console.client()
    assert (await sign_in(again, key)).status_code == 303
    token = again.cookies["visgate_session"]
    [(row_id, doc)] = stored_sessions(api.db_path)
    assert row_id == doc["id"] == session_id(token)
    raw = json.dumps(doc)
    assert token not in raw and key not in raw
    assert doc["key_id"] == hash_api_key(key) and doc["tenant"] == "alice"
    assert doc["expires_at"] - doc["created_at"] == api.services.settings.console_session_seconds


async def test_signing_in_again_in_one_browser_ends_its_old_session(console: Console) -> None:
    browser = await console.browser("alice")
    old = browser.session_token
    assert (await sign_in(browser.client, console.api.keys["bob"].api_key)).status_code == 303
    assert browser.session_token != old
    assert [doc["tenant"] for _, doc in stored_sessions(console.api.db_path)] == ["bob"]
    page = await browser.get("/console/deployments")
    assert 'title="Signed in as">bob<' in page.text


@pytest.mark.parametrize("which", ["wrong", "revoked", "blank"])
async def test_a_wrong_or_revoked_key_gets_a_401_page_and_no_session(
    console: Console, which: str
) -> None:
    api = console.api
    if which == "revoked":
        await revoke_key(api.services, "bob")
    api_key = {"wrong": "vg_not_a_key", "revoked": api.keys["bob"].api_key, "blank": "   "}[which]
    client = console.client()

    answer = await sign_in(client, api_key)

    assert answer.status_code == 401
    assert UNKNOWN_OR_REVOKED in answer.text
    assert 'name="sign_in_token"' in answer.text  # the form again, to retry
    assert_page_headers(answer)
    assert "visgate_session" not in set_cookies(answer)
    assert "visgate_session" not in client.cookies
    assert stored_sessions(api.db_path) == []
    follow = await client.get("/console/deployments")
    assert follow.status_code == 303 and follow.headers["location"].startswith("/console/sign-in")


async def test_a_sign_in_posted_from_another_site_is_refused(console: Console) -> None:
    """Login CSRF: another site's form can carry a key and a token it got from its own visit
    to the form, but not the victim's sign-in cookie."""
    api = console.api
    attacker = console.client()
    attacker_form = await attacker.get("/console/sign-in")
    attacker_token = sign_in_token(attacker_form.text)
    victim = console.client()
    victim_has_form = console.client()
    await victim_has_form.get("/console/sign-in")  # a cookie of its own, a different token

    for client, token in (
        (victim, attacker_token),  # no sign-in cookie at all
        (victim, ""),
        (victim_has_form, attacker_token),  # cookie and field disagree
    ):
        answer = await client.post(
            "/console/sign-in",
            data={"sign_in_token": token, "api_key": api.keys["bob"].api_key},
        )
        assert answer.status_code == 403
        assert "The sign-in form expired" in answer.text
        assert "visgate_session" not in set_cookies(answer)
    assert stored_sessions(api.db_path) == []


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example",
        "//evil.example/console",
        "https://evil.example",
        "https://evil.example/console/deployments",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
        "deployments",
    ],
)
async def test_next_never_leaves_the_console(console: Console, next_path: str) -> None:
    client = console.client()
    form = await client.get("/console/sign-in", params={"next": next_path})
    assert 'name="next" value="/console/deployments"' in form.text

    answer = await sign_in(client, console.api.keys["alice"].api_key, next_path=next_path)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/deployments"


async def test_unknown_keys_from_one_address_meet_429_like_bearer_tokens(
    console: Console,
) -> None:
    """The per-address budget of unknown keys (AUTH_FAILURES_PER_MINUTE, 300; 20 here) is
    one budget for sign-ins and bearer tokens."""
    api = console.api
    api.app.state.auth_failures = MemoryRateLimiter(20)
    client = console.client()

    answers = [await sign_in(client, f"vg_guess_{i}") for i in range(24)]

    assert [a.status_code for a in answers[:20]] == [401] * 20
    assert {a.status_code for a in answers[20:]} == {429}
    assert "RateLimitedError" in answers[-1].text
    assert "too many requests with unknown API keys" in answers[-1].text
    assert int(answers[-1].headers["retry-after"]) >= 1  # when to try again, as the API says
    assert_page_headers(answers[-1])
    assert all("visgate_session" not in set_cookies(a) for a in answers)
    bearer = await api.client.get("/v1/models", headers={"Authorization": "Bearer vg_more"})
    assert bearer.status_code == 429
    # Even the right key is not checked from this address now (it was never used here).
    blocked = await sign_in(client, api.keys["alice"].api_key)
    assert blocked.status_code == 429 and "visgate_session" not in set_cookies(blocked)

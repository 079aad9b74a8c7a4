"""A console under test: the real app (the API fixture's), and browsers that sign in through
the real sign-in form, each with a cookie jar of its own."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import Api, make_api  # noqa: F401  (fixture)

BASE_URL = "http://visgate.test"
SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]*)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
# The headers every console answer carries, pages and redirects alike.
PAGE_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options")


def sign_in_token(page: str) -> str:
    found = SIGN_IN_TOKEN.search(page)
    assert found, "the sign-in form has no sign_in_token field"
    return html.unescape(found.group(1))


def csrf_of(page: str) -> str:
    found = CSRF_META.search(page)
    assert found, "the page has no csrf-token meta tag"
    return html.unescape(found.group(1))


def assert_page_headers(resp: httpx.Response) -> None:
    csp = resp.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"


def set_cookies(resp: httpx.Response) -> dict[str, dict[str, str]]:
    """The cookies a response sets, by name: `value` and each attribute (lowercased name;
    a flag such as HttpOnly maps to "")."""
    found: dict[str, dict[str, str]] = {}
    for header in resp.headers.get_list("set-cookie"):
        pair, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = pair.partition("=")
        found[name] = {"value": value}
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            found[name][key.lower()] = val
    return found


async def sign_in(
    client: httpx.AsyncClient, api_key: str, *, next_path: str | None = None
) -> httpx.Response:
    """Post the real sign-in form: GET it (which sets the form's cookie), read its hidden
    token, POST it back with the key. Returns the POST's answer, unfollowed."""
    form = await client.get("/console/sign-in", params={"next": next_path} if next_path else {})
    assert form.status_code == 200, form.text
    data = {"sign_in_token": sign_in_token(form.text), "api_key": api_key}
    if next_path is not None:
        data["next"] = next_path
    return await client.post("/console/sign-in", data=data)


@dataclass
class Browser:
    """One signed-in browser: its own cookies, and the CSRF token its pages carry."""

    client: httpx.AsyncClient
    name: str
    csrf: str

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post_form(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = "own"
    ) -> httpx.Response:
        """A console form POST; `csrf` "own" sends this session's token, None sends none,
        anything else is sent as the token."""
        fields = dict(data or {})
        if csrf is not None:
            fields["csrf_token"] = self.csrf if csrf == "own" else csrf
        return await self.client.post(path, data=fields)

    @property
    def session_token(self) -> str:
        token = self.client.cookies.get("visgate_session")
        assert token, "no session cookie in this browser"
        return token


@dataclass
class Console:
    api: Api
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, base_url: str = BASE_URL, **kwargs: Any) -> httpx.AsyncClient:
        """A fresh browser (empty cookie jar) on the same app."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.api.app), base_url=base_url, **kwargs
        )
        self.opened.append(client)
        return client

    async def browser(self, name: str = "alice", api_key: str | None = None) -> Browser:
        """A browser signed in with `name`'s key (or `api_key`) through the real form; its CSRF
        token is read from the page the sign-in lands on."""
        client = self.client()
        answer = await sign_in(client, api_key or self.api.keys[name].api_key)
        assert answer.status_code == 303, answer.text
        page = await client.get(answer.headers["location"])
        assert page.status_code == 200, page.text
        return Browser(client=client, name=name, csrf=csrf_of(page.text))

    async def aclose(self) -> None:
        for client in self.opened:
            await client.aclose()


@pytest.fixture
async def make_console(make_api: Any) -> AsyncIterator[Any]:  # noqa: F811
    made: list[Console] = []

    async def factory(**env: Any) -> Console:
        console = Console(api=await make_api(**env))
        made.append(console)
        return console

    yield factory
    for console in made:
        await console.aclose()


@pytest.fixture
async def console(make_console: Any) -> Console:
    return await make_console()

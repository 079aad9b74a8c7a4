"""What every console page shares: the signed-in visitor, rendering with the security headers,
and errors shown as pages rather than JSON.

Pages are Jinja templates with autoescaping on: whatever a user typed or a worker printed is
escaped, and nothing user-written is ever marked safe. The Content-Security-Policy allows
scripts and styles from this origin only (no inline script, no `eval`), images from data and
blob URLs (generated images, the GLB download), and no framing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from visgate.api.deps import count_request, session_key
from visgate.auth.console_sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    csrf_matches,
    csrf_token,
)
from visgate.console.views import duration
from visgate.domain.errors import ForbiddenError, UnauthorizedError, VisgateError
from visgate.domain.records import ApiKey
from visgate.services import Services

# Autoescaping on for every template, explicitly: it is what keeps user text inert.
TEMPLATES = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)
TEMPLATES.env.filters["duration"] = duration
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
SIGN_IN_PATH = "/console/sign-in"


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in tenant: its key, and the session's CSRF token that pages carry."""

    key: ApiKey
    csrf: str

    @property
    def tenant(self) -> str:
        return self.key.tenant


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    visitor: Visitor | None = None,
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"visitor": visitor, "csrf": visitor.csrf if visitor else None, **context},
        status_code=status_code,
    )
    response.headers.update(PAGE_HEADERS)
    return response


def go(path: str) -> RedirectResponse:
    """After a change, the page to show (303: the browser follows with a GET)."""
    return RedirectResponse(path, status_code=303, headers=PAGE_HEADERS)


def secure_request(request: Request) -> bool:
    """Whether the browser reached us over https: directly, or through the proxies we trust
    (Cloud Run's front end says so in `X-Forwarded-Proto`)."""
    if request.url.scheme == "https":
        return True
    hops = request.app.state.services.settings.trusted_proxy_hops
    forwarded = request.headers.get("x-forwarded-proto", "")
    return hops > 0 and forwarded.split(",")[-1].strip() == "https"


async def current_visitor(request: Request) -> Visitor:
    """The signed-in visitor; `UnauthorizedError` (which `ConsoleRoute` turns into the way to
    sign-in) without a live session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise UnauthorizedError("sign in first")
    key = await session_key(request, token)
    visitor = Visitor(key=key, csrf=csrf_token(token))
    request.state.visitor = visitor  # an error page after this still shows who is signed in
    await count_request(request, key)
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def form_of(request: Request) -> dict[str, str]:
    """A posted form's fields (the last value of each); urlencoded only, which is all the
    console's forms send, so no multipart parser is needed."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is the session's."""
    form = await form_of(request)
    if not csrf_matches(request.cookies.get(SESSION_COOKIE, ""), form.get(CSRF_FIELD)):
        raise ForbiddenError("this form is stale or came from another site: reload the page")
    return form


def _error_page(request: Request, exc: VisgateError) -> Response:
    if isinstance(exc, UnauthorizedError):
        response = go(f"{SIGN_IN_PATH}?next={quote(request.url.path)}")
        if SESSION_COOKIE in request.cookies:  # expired, signed out or revoked: drop it
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    response = render(
        request,
        "error.html",
        {"title": exc.type, "error": exc},
        status_code=exc.status_code,
        visitor=getattr(request.state, "visitor", None),
    )
    response.headers.update(exc.headers or {})  # a 429's Retry-After, as the API sends it
    return response


class ConsoleRoute(APIRoute):
    """Console routes answer with pages: a missing or dead session (`UnauthorizedError`)
    leads to sign-in, another domain error or a malformed path parameter is an error page
    with the API's own type and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except VisgateError as exc:
                return _error_page(request, exc)
            except RequestValidationError:
                return render(
                    request,
                    "error.html",
                    {"title": "Not found", "error": None},
                    status_code=404,
                )

        return handle

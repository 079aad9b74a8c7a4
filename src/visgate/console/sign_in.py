"""Signing in and out of the console. The API key is posted once, in a form body, and
exchanged for a session cookie: HttpOnly (no script reads it), SameSite=Strict (no other
site's request carries it), Secure over https, and as long-lived as the session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from visgate.api.deps import key_for_sign_in
from visgate.auth.console_sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    close_session,
    new_token,
    open_session,
)
from visgate.console.pages import (
    PAGE_HEADERS,
    SIGN_IN_PATH,
    ConsoleRoute,
    checked_form,
    form_of,
    go,
    render,
    secure_request,
    services_of,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
SIGN_IN_FORM_SECONDS = 3600


def _safe_next(path: str | None) -> str:
    """Only a console path of ours: never another site, never `//host`."""
    if path and path.startswith("/console") and not path.startswith("//"):
        return path
    return "/console/deployments"


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307, headers=PAGE_HEADERS)


@router.get("/console")
async def console_home() -> RedirectResponse:
    return RedirectResponse("/console/deployments", status_code=307, headers=PAGE_HEADERS)


def _sign_in_page(
    request: Request, next_path: str, message: str | None, status_code: int = 200
) -> Response:
    token = new_token()
    response = render(
        request,
        "sign_in.html",
        {"title": "Sign in", "next": next_path, "message": message, "sign_in_token": token},
        status_code=status_code,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=SIGN_IN_FORM_SECONDS,
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
    )
    return response


@router.get(SIGN_IN_PATH)
async def sign_in_form(
    request: Request, next: Annotated[str | None, Query(max_length=512)] = None
) -> Response:
    return _sign_in_page(request, _safe_next(next), None)


@router.post(SIGN_IN_PATH)
async def sign_in(request: Request) -> Response:
    form = await form_of(request)
    next_path = _safe_next(form.get("next"))
    expected = request.cookies.get(SIGN_IN_COOKIE)
    if not expected or form.get("sign_in_token") != expected:
        return _sign_in_page(request, next_path, "The sign-in form expired: try again.", 403)
    api_key = form.get("api_key", "").strip()
    key = await key_for_sign_in(request, api_key) if api_key else None
    if key is None:
        return _sign_in_page(request, next_path, "That API key is unknown or revoked.", 401)
    services = services_of(request)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await close_session(services, old)
    token, _ = await open_session(services, key, services.store.console_sessions.clock())
    response = go(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=services.settings.console_session_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await close_session(services_of(request), token)
    response = go(SIGN_IN_PATH)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.headers.update(PAGE_HEADERS)
    return response

"""One error envelope for every answer that is not a success, 404s and 422s included:
`{"error": {"type", "message", "request_id", "fields"?}}`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from visgate.domain.errors import VisgateError
from visgate.logging import get_logger

log = get_logger(__name__)

_HTTP_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "ValidationError",
    429: "RateLimitedError",
}


def error_response(
    request: Request | None,
    status_code: int,
    type_: str,
    message: str,
    *,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "message": message,
        "request_id": getattr(request.state, "request_id", None) if request else None,
    }
    if fields is not None:
        body["fields"] = fields
    return JSONResponse({"error": body}, status_code=status_code, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":  # its loc is a character offset, not a field
            fields.append({"field": "body", "message": err.get("msg", "invalid JSON")})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        fields.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return fields


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^/{}]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def _allowed_methods(request: Request) -> str | None:
    """Every method the API document lists for the request's path, or None for a path it
    does not list. Starlette's own 405 names only the methods of the first route whose path
    matched, while one path is often served by several routes (`GET` and `POST
    /v1/deployments` are two). Where templates overlap (`/jobs/sync`, `/jobs/{job_id}`) the
    one with the fewest parameters is the resource, as in routing."""
    path = request.url.path
    matches: dict[int, set[str]] = {}
    for template, item in request.app.openapi().get("paths", {}).items():
        if _template_regex(template).fullmatch(path):
            methods = matches.setdefault(template.count("{"), set())
            methods.update(m.upper() for m in item if m in _HTTP_METHODS)
    return ", ".join(sorted(matches[min(matches)])) if matches else None


def _unparsable_body(request: Request) -> JSONResponse:
    """FastAPI answers 400 for a body it cannot decode at all (bytes that are not UTF-8);
    to a caller that is invalid input like malformed JSON, so it gets the same 422, the
    answer every operation documents."""
    message = "the body is not valid UTF-8 JSON"
    return error_response(
        request,
        422,
        "ValidationError",
        f"invalid request: body: {message}",
        fields=[{"field": "body", "message": message}],
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VisgateError)
    async def visgate_error(request: Request, exc: VisgateError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request_failed", error_type=exc.type, message=exc.message)
        fields = exc.to_dict().get("fields")
        return error_response(
            request, exc.status_code, exc.type, exc.message, fields=fields, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(
            request, 422, "ValidationError", f"invalid request: {summary}", fields=fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:  # the body parser's own 400
            return _unparsable_body(request)
        headers = getattr(exc, "headers", None)
        allowed = _allowed_methods(request) if exc.status_code == 405 else None
        if allowed:
            headers = {**(headers or {}), "Allow": allowed}
        type_ = _HTTP_TYPES.get(exc.status_code, "HTTPError")
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(request, exc.status_code, type_, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return error_response(request, 500, "InternalError", "internal error; see server logs")

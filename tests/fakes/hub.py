"""A fake Hugging Face hub on 127.0.0.1 that speaks the hub's REST paths and JSON shapes.

The real `huggingface_hub` client (via `HfApi(endpoint=url)` or `HF_ENDPOINT=url`) talks
to it: `GET /api/models/{repo}` (and `/revision/{rev}`) with `expand` and `blobs`
(files_metadata), `GET /api/models/{repo}/auth-check`, `GET /api/whoami-v2`, and
`HEAD/GET /{repo}/resolve/{rev}/{file}` for files given explicit content. Errors carry the
statuses and `X-Error-Code` / `X-Error-Message` headers the client maps to its exceptions
(on http:// a bare 401 is NOT mapped to RepositoryNotFoundError, so the header is always sent).

    with run_fake_hub() as hub:                      # seeded with the registry's models
        hub.state.add_model("me/model", parameters={"BF16": 10**9})
        hub.state.fail_next(2, status=503)           # fault knobs (also fail_always,
        hub.state.hang("/auth-check")                #   latency_s, hang)
        ... HubValidator(hub.url) ...
        assert hub.state.count("/api/models/me/model") == 1

The state it serves (models, tokens, fault knobs, the request log) is `hub_state.py`; the
default seed (`hub_seed.py`) holds the registry's models, the 3D bundle's components
and the tokens `VALID_TOKEN`, `GATED_ACCESS_TOKEN` (FLUX access) and `INVALID_TOKEN`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.hub_seed import (
    GATED_ACCESS_TOKEN,
    INVALID_TOKEN,
    VALID_TOKEN,
    seed_default_models,
)
from tests.fakes.hub_state import FakeHubState, FakeModel, RequestRecord
from tests.support.servers import serve_in_thread

__all__ = [
    "GATED_ACCESS_TOKEN",
    "INVALID_TOKEN",
    "VALID_TOKEN",
    "FakeHub",
    "FakeHubState",
    "run_fake_hub",
]


INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
HANG_MAX_S = 10.0  # a hung request gives up on its own after this
DISABLED = "Access to this resource is disabled."
EXPANDABLE = {
    "author",
    "createdAt",
    "disabled",
    "downloads",
    "gated",
    "lastModified",
    "library_name",
    "likes",
    "pipeline_tag",
    "private",
    "safetensors",
    "sha",
    "siblings",
    "tags",
    "usedStorage",
}


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _sibling(s: dict[str, Any], blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": s["rfilename"]}
    out = {"rfilename": s["rfilename"], "size": s["size"], "blobId": _digest(s["rfilename"])[:40]}
    if s["size"] > 10_000_000:  # large files are LFS on the real hub
        out["lfs"] = {"size": s["size"], "sha256": _digest(s["rfilename"]), "pointerSize": 134}
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_info_json(model: FakeModel, *, expand: list[str], blobs: bool) -> dict[str, Any]:
    """The body of `GET /api/models/{repo}`, with the real hub's field names."""
    owner = model.repo_id.split("/")[0] if "/" in model.repo_id else None
    full: dict[str, Any] = {
        "_id": _digest(model.repo_id)[:24],
        "id": model.repo_id,
        "modelId": model.repo_id,
        "author": owner,
        "sha": model.sha,
        "lastModified": "2025-06-01T00:00:00.000Z",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "private": model.private,
        "gated": model.gated,
        "disabled": model.disabled,
        "downloads": 0,
        "likes": 0,
        "library_name": model.library_name,
        "pipeline_tag": model.pipeline_tag,
        "tags": model.tags,
        "siblings": [_sibling(s, blobs) for s in model.siblings],
        "usedStorage": sum(s["size"] for s in model.siblings),
    }
    if model.parameters:
        full["safetensors"] = {
            "parameters": dict(model.parameters),
            "total": sum(model.parameters.values()),
        }
    for optional in ("library_name", "pipeline_tag"):
        if full[optional] is None:
            del full[optional]
    if not expand:
        return full
    return {k: v for k, v in full.items() if k in {"_id", "id", *expand}}


def build_app(state: FakeHubState) -> Starlette:
    def bearer(request: Request) -> str | None:
        value = request.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None

    async def hang_until_client_leaves(request: Request) -> Response:
        deadline = asyncio.get_running_loop().time() + HANG_MAX_S
        while asyncio.get_running_loop().time() < deadline:
            if await request.is_disconnected():
                with state.lock:
                    state.hung_up.append(request.url.path)
                break
            await asyncio.sleep(0.01)
        return Response(status_code=504)

    async def guard(request: Request) -> Response | None:
        fault = state.record(request)
        if state.hangs(request.url.path):
            return await hang_until_client_leaves(request)
        if state.latency_s:
            await asyncio.sleep(state.latency_s)
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": retry_after} if retry_after else {}
            return JSONResponse({"error": "fault injected"}, status_code=status, headers=headers)
        token = bearer(request)
        if token is not None and token not in state.valid_tokens:
            return _error(401, INVALID_CREDENTIALS)
        return None

    def readable(request: Request, repo_id: str, *, info: bool = False) -> FakeModel | Response:
        """The repo, or the hub's refusal; `info`: for model info, where a disabled repo may
        answer 200 with `"disabled": true`."""
        token = bearer(request)
        model = state.find_model(repo_id)
        hidden = model is None or (model.private and token not in model.tokens_with_access)
        if hidden:
            # Anonymous callers get 401, authenticated ones 404; both say RepoNotFound.
            return _error(401 if token is None else 404, "Repository not found", "RepoNotFound")
        assert model is not None
        if token is not None and token in model.tokens_forbidden:
            return _error(403, "This fine-grained token has no access to this repository")
        if model.disabled and not (info and model.disabled_status == 200):
            return _error(403, DISABLED)
        return model

    def gate(request: Request, model: FakeModel) -> Response | None:
        if not model.gated:
            return None
        token = bearer(request)
        if token is None:
            return _error(
                401,
                f"Access to model {model.repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
                "GatedRepo",
            )
        if token not in model.tokens_with_access:
            return _error(
                403,
                f"Access to model {model.repo_id} is restricted and you are not in the "
                f"authorized list. Visit https://huggingface.co/{model.repo_id} to ask for access.",
                "GatedRepo",
            )
        return None

    def repo_of(request: Request) -> str:
        p = request.path_params
        return f"{p['owner']}/{p['name']}" if "owner" in p else p["name"]

    async def model_info(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        found = readable(request, repo_of(request), info=True)
        if isinstance(found, Response):
            return found
        rev = request.path_params.get("rev")
        if rev is not None and rev not in ("main", found.sha):
            return _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        expand = request.query_params.getlist("expand") + request.query_params.getlist("expand[]")
        blobs = request.query_params.get("blobs", "").lower() in ("1", "true")
        if expand and blobs:
            return _error(400, "expand cannot be combined with blobs")
        if unknown := set(expand) - EXPANDABLE:
            return _error(400, f"invalid expand value(s): {sorted(unknown)}")
        return JSONResponse(model_info_json(found, expand=expand, blobs=blobs))

    async def auth_check(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        found = readable(request, repo_of(request))
        if isinstance(found, Response):
            return found
        return gate(request, found) or JSONResponse({"access": "granted"})

    async def whoami(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        if bearer(request) is None:
            return _error(401, INVALID_CREDENTIALS)
        return JSONResponse({"type": "user", "name": "fake-user", "auth": {"type": "access_token"}})

    async def resolve(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        found = readable(request, repo_of(request))
        if isinstance(found, Response):
            return found
        if (denied := gate(request, found)) is not None:
            return denied
        path = request.path_params["path"]
        if path not in found.files:
            return _error(404, "Entry not found", "EntryNotFound")
        content = found.files[path]
        headers = {"X-Repo-Commit": found.sha, "ETag": f'"{_digest(path)[:40]}"'}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(content))
            return Response(status_code=200, headers=headers)
        return Response(content, headers=headers, media_type="application/octet-stream")

    base = "/api/models/{owner}/{name}"
    return Starlette(
        routes=[
            Route("/api/whoami-v2", whoami),
            Route(base, model_info),
            Route(base + "/revision/{rev:path}", model_info),
            Route(base + "/auth-check", auth_check),
            Route("/api/models/{name}", model_info),
            Route("/{owner}/{name}/resolve/{rev}/{path:path}", resolve, methods=["GET", "HEAD"]),
        ]
    )


@dataclass
class FakeHub:
    url: str
    state: FakeHubState

    @property
    def requests(self) -> list[RequestRecord]:
        return self.state.requests


@contextlib.contextmanager
def run_fake_hub(state: FakeHubState | None = None, *, seed: bool = True) -> Iterator[FakeHub]:
    """Serve a fake hub on 127.0.0.1 in a background thread; yield its URL and state."""
    state = state or FakeHubState()
    if seed:
        seed_default_models(state)
    with serve_in_thread(build_app(state)) as url:
        yield FakeHub(url, state)

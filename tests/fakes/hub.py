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

The default seed (`hub_seed.py`) holds the registry's models, the 3D bundle's components
and the tokens `VALID_TOKEN`, `GATED_ACCESS_TOKEN` (FLUX access) and `INVALID_TOKEN`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
from tests.support.receivers import serve_in_thread

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


@dataclass
class FakeModel:
    repo_id: str
    gated: str | bool = False  # "auto" | "manual" | False
    private: bool = False
    disabled: bool = False
    parameters: dict[str, int] | None = None
    siblings: list[dict[str, Any]] = field(default_factory=list)  # {rfilename, size}
    library_name: str | None = None
    pipeline_tag: str | None = None
    tags: list[str] = field(default_factory=list)
    tokens_with_access: set[str] = field(default_factory=set)
    # Valid tokens the hub answers 403 without an error code (a fine-grained token whose
    # scope leaves this repo out).
    tokens_forbidden: set[str] = field(default_factory=set)
    files: dict[str, bytes] = field(default_factory=dict)  # content served by /resolve
    # How model info answers a disabled repo: 403 "Access to this resource is disabled."
    # (the usual form) or 200 with `"disabled": true`.
    disabled_status: int = 403

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.repo_id.encode()).hexdigest()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    authorized: bool


class FakeHubState:
    """Models, tokens, fault knobs and a log of requests; safe to change while serving."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: dict[str, FakeModel] = {}
        self.valid_tokens: set[str] = {VALID_TOKEN, GATED_ACCESS_TOKEN}
        self.requests: list[RequestRecord] = []
        self.latency_s = 0.0
        self.hung_up: list[str] = []  # paths of hung requests whose client gave up
        self._hang: set[str] = set()
        self._faults: deque[tuple[int, str | None]] = deque()
        self._fail_always: tuple[int, str | None] | None = None

    def add_model(
        self,
        repo_id: str,
        *,
        gated: str | bool = False,
        private: bool = False,
        disabled: bool = False,
        parameters: dict[str, int] | None = None,
        siblings: Iterable[dict[str, Any] | tuple[str, int]] = (),
        library_name: str | None = None,
        pipeline_tag: str | None = None,
        tags: Iterable[str] = (),
        tokens_with_access: Iterable[str] = (),
        tokens_forbidden: Iterable[str] = (),
        files: dict[str, bytes] | None = None,
        disabled_status: int = 403,
    ) -> FakeModel:
        """Add (or replace) a repo; `siblings` items are `{rfilename, size}` or `(name, size)`."""
        sibs = [s if isinstance(s, dict) else {"rfilename": s[0], "size": s[1]} for s in siblings]
        for name, content in (files or {}).items():
            if not any(s["rfilename"] == name for s in sibs):
                sibs.append({"rfilename": name, "size": len(content)})
        model = FakeModel(
            repo_id,
            gated=gated,
            private=private,
            disabled=disabled,
            parameters=parameters,
            siblings=sibs,
            library_name=library_name,
            pipeline_tag=pipeline_tag,
            tags=list(tags),
            tokens_with_access=set(tokens_with_access),
            tokens_forbidden=set(tokens_forbidden),
            files=dict(files or {}),
            disabled_status=disabled_status,
        )
        with self.lock:
            self.models[repo_id.lower()] = model
            self.valid_tokens |= model.tokens_with_access | model.tokens_forbidden
        return model

    def reset(self, *, seed: bool = True) -> None:
        """Back to a fresh hub (one server can then serve many tests)."""
        with self.lock:
            self.models.clear()
            self.valid_tokens = {VALID_TOKEN, GATED_ACCESS_TOKEN}
            self.requests.clear()
            self.latency_s = 0.0
            self.hung_up.clear()
            self._hang.clear()
            self._faults.clear()
            self._fail_always = None
        if seed:
            seed_default_models(self)

    def add_token(self, token: str) -> None:
        with self.lock:
            self.valid_tokens.add(token)

    def fail_next(self, n: int = 1, *, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next `n` requests (any path) with `status`."""
        with self.lock:
            self._faults.extend([(status, retry_after)] * n)

    def fail_always(self, status: int | None = 503, *, retry_after: str | None = None) -> None:
        """Answer every request with `status` until called with None."""
        with self.lock:
            self._fail_always = (status, retry_after) if status else None

    def hang(self, path_contains: str) -> None:
        """Never answer requests whose path contains this; record when the client hangs up
        (`hung_up`), which shows the client's own timeout fired and freed its socket."""
        with self.lock:
            self._hang.add(path_contains)

    def count(self, path_contains: str = "", *, method: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if path_contains in r.path and (method is None or r.method == method)
            )

    def _record(self, request: Request) -> tuple[int, str | None] | None:
        with self.lock:
            self.requests.append(
                RequestRecord(
                    request.method,
                    request.url.path,
                    request.url.query,
                    "authorization" in request.headers,
                )
            )
            if self._faults:
                return self._faults.popleft()
            return self._fail_always

    def _hangs(self, path: str) -> bool:
        with self.lock:
            return any(part in path for part in self._hang)

    def _model(self, repo_id: str) -> FakeModel | None:
        with self.lock:
            return self.models.get(repo_id.lower())


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
        fault = state._record(request)
        if state._hangs(request.url.path):
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
        model = state._model(repo_id)
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

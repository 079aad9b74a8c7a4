"""What a fake Hugging Face hub holds: models, tokens, fault knobs and the requests it saw.

`tests.fakes.hub` serves this state over the hub's wire protocol; tests change it while the
server runs (every field is read and written under `lock`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from tests.fakes.hub_seed import GATED_ACCESS_TOKEN, VALID_TOKEN, seed_default_models


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
        self._start_empty()

    def _start_empty(self) -> None:
        """Every field a fresh hub has; `reset` comes back here, so none is forgotten."""
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
            self._start_empty()
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

    def record(self, request: Request) -> tuple[int, str | None] | None:
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

    def hangs(self, path: str) -> bool:
        with self.lock:
            return any(part in path for part in self._hang)

    def find_model(self, repo_id: str) -> FakeModel | None:
        with self.lock:
            return self.models.get(repo_id.lower())

"""The two hub calls validation needs, made with huggingface_hub's client.

`HfApi` is synchronous (2.x runs on httpx2), so each call goes to a thread of this client's
own bounded pool (a hanging hub cannot starve the loop's default executor). The library's
shared httpx2 client has no timeout (`default_client_factory`, `timeout=None`) and
`HfApi.auth_check` takes none, so every request here carries its own: an abandoned
`asyncio.wait_for` alone would leave the thread blocked on the socket. Transient failures
(429, 5xx, timeouts, connection errors) are retried with tenacity, honouring
`Retry-After`, then surface as `HuggingFaceUnavailableError` so the reconciler retries later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from huggingface_hub import HfApi
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from visgate.domain.errors import HuggingFaceUnavailableError
from visgate.hub.translate import translate
from visgate.hub.weights import RepoFile

log = structlog.get_logger(__name__)
T = TypeVar("T")

HUB_THREADS = 16  # hub calls in flight at once per client; more wait for a free thread


@dataclass(frozen=True, slots=True)
class HubModel:
    """What validation uses from `model_info(files_metadata=True)`."""

    model_id: str
    sha: str | None
    private: bool
    gated: str | bool  # "auto" | "manual" | False
    disabled: bool
    library_name: str | None
    pipeline_tag: str | None
    tags: tuple[str, ...]
    files: tuple[RepoFile, ...]
    parameters: dict[str, int] | None  # safetensors.parameters by dtype

    @property
    def is_gated(self) -> bool:
        return bool(self.gated)


def _hub_model(info: Any) -> HubModel:
    return HubModel(
        model_id=info.id,
        sha=info.sha,
        private=bool(info.private),
        gated=info.gated or False,
        disabled=bool(info.disabled),
        library_name=info.library_name,
        pipeline_tag=info.pipeline_tag,
        tags=tuple(info.tags or ()),
        files=tuple(RepoFile(s.rfilename, s.size) for s in info.siblings or ()),
        parameters=dict(info.safetensors.parameters) if info.safetensors else None,
    )


class HubClient:
    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 10.0,
        retry_attempts: int = 3,
        max_retry_wait: float = 10.0,
        initial_retry_wait: float = 0.5,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._api = HfApi(endpoint=self.endpoint, library_name="visgate")
        self._threads = ThreadPoolExecutor(HUB_THREADS, thread_name_prefix="visgate-hub")
        self._timeout_s = timeout_s
        self._attempts = max(1, retry_attempts)
        self._max_wait = max_retry_wait
        # Works across tenacity 9.x (`wait_exponential_jitter(initial=)` is deprecated in 9.2).
        self._backoff = wait_exponential(
            multiplier=initial_retry_wait, max=max_retry_wait
        ) + wait_random(0, initial_retry_wait)

    async def model(self, model_id: str, token: str | None) -> HubModel:
        """Model info with file sizes; `token=None` sends no credentials at all."""
        info = await self._call(
            "model_info",
            model_id,
            token,
            lambda: self._api.model_info(
                model_id, files_metadata=True, timeout=self._timeout_s, token=token or False
            ),
        )
        return _hub_model(info)

    async def check_access(self, model_id: str, token: str) -> None:
        """Raise unless `token` may read `model_id` (how gated repos answer "who may")."""
        await self._call("auth_check", model_id, token, lambda: self._auth_check(model_id, token))

    def _auth_check(self, model_id: str, token: str) -> None:
        """`HfApi.auth_check` (same route, headers and error mapping) with a timeout."""
        response = get_session().get(
            f"{self.endpoint}/api/models/{model_id}/auth-check",
            headers=build_hf_headers(token=token, library_name="visgate"),
            timeout=self._timeout_s,
        )
        hf_raise_for_status(response)

    async def _call(self, what: str, model_id: str, token: str | None, fn: Callable[[], T]) -> T:
        async def once() -> T:
            try:
                call = asyncio.get_running_loop().run_in_executor(self._threads, fn)
                return await asyncio.wait_for(call, self._timeout_s + 1.0)
            except Exception as exc:
                raise translate(exc, model_id, with_token=bool(token)) from exc

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(HuggingFaceUnavailableError),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            before_sleep=lambda state: log.warning(
                "hub_call_retrying",
                call=what,
                model_id=model_id,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the hub's `Retry-After` if longer (capped)."""
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "headers", {}).get("Retry-After")
        return min(max(backoff, float(hinted) if hinted else 0.0), self._max_wait)

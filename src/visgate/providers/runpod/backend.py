"""`RunpodBackend`: the part of `GpuProvider` that does not depend on which Runpod control
API (GraphQL or REST v2) makes templates and endpoints."""

from __future__ import annotations

from typing import Any

from visgate.domain.errors import RunpodInsufficientGPUError
from visgate.logging import get_logger
from visgate.providers.base import (
    EndpointHealth,
    EndpointRef,
    EndpointSpec,
    Fence,
    WorkerCounts,
)
from visgate.providers.runpod.payloads import named
from visgate.providers.runpod.retry import RetryPolicy
from visgate.providers.runpod.serverless import ServerlessAPI

log = get_logger(__name__)

_WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")


class RunpodBackend:
    """What both Runpod backends share: the retry policy, the job half of `GpuProvider`
    (health, run, status, cancel — the same endpoint API whichever control API made the
    endpoint) and the `ensure_endpoint` flow; a backend supplies the two by-name steps."""

    needs_api_key = True
    default_image: str | None = None  # the operator names the worker image

    def __init__(
        self,
        api_base: str,
        *,
        timeout: float = 30.0,
        retry_attempts: int = 4,
        max_retry_wait: float = 20.0,
    ) -> None:
        self.timeout = timeout
        self.policy = RetryPolicy(
            attempts=retry_attempts, max_wait=max_retry_wait, base_wait=min(0.5, max_retry_wait)
        )
        self.serverless = ServerlessAPI(api_base, timeout=timeout, policy=self.policy)

    async def _templates(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _endpoints(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _ensure_template(self, spec: EndpointSpec, api_key: str, *, look: bool) -> str:
        raise NotImplementedError

    async def _ensure_endpoint_row(
        self, spec: EndpointSpec, template_id: str, api_key: str, *, look: bool
    ) -> EndpointRef:
        raise NotImplementedError

    async def _existing_templates(
        self, name: str, api_key: str, *, look: bool
    ) -> list[dict[str, Any]]:
        """The templates called `name` (none looked up when `look` is False: a fresh try)."""
        return named(await self._templates(api_key, retry=False), name) if look else []

    async def _existing_endpoints(
        self, name: str, api_key: str, *, look: bool
    ) -> list[dict[str, Any]]:
        """The endpoints called `name`, oldest first; more than one is worth a warning."""
        found = named(await self._endpoints(api_key, retry=False), name) if look else []
        if len(found) > 1:
            log.warning("runpod_duplicate_endpoints", name=name, count=len(found))
        return found

    async def ensure_endpoint(
        self,
        spec: EndpointSpec,
        *,
        api_key: str,
        fresh: bool = False,
        fence: Fence | None = None,
    ) -> EndpointRef:
        if not spec.gpu_pools:
            raise RunpodInsufficientGPUError(f"no GPU pool was chosen for {spec.name}")
        tries = 0

        async def once() -> EndpointRef:
            nonlocal tries
            # A fresh first try creates straight away (half the calls). Were the template
            # there after all, Runpod refuses its name and the repeat looks up below.
            look = not fresh or tries > 0
            tries += 1
            if fence is not None:
                await fence()
            template_id = await self._ensure_template(spec, api_key, look=look)
            if fence is not None:
                await fence()
            return await self._ensure_endpoint_row(spec, template_id, api_key, look=look)

        # Each repeat looks up by name again, so repeating after a lost answer is safe.
        return await self.policy.run(once, what="ensure_endpoint")

    async def endpoint_health(self, endpoint_id: str, *, api_key: str) -> EndpointHealth:
        body = await self.serverless.health(endpoint_id, api_key=api_key)
        workers = body.get("workers") or {}
        counts = WorkerCounts(**{s: int(workers.get(s) or 0) for s in _WORKER_STATES})
        jobs = {str(k): int(v) for k, v in (body.get("jobs") or {}).items() if _is_int(v)}
        return EndpointHealth(workers=counts, jobs=jobs)

    async def submit_job(
        self, endpoint_id: str, body: dict[str, Any], *, api_key: str, sync: bool = False
    ) -> dict[str, Any]:
        return await self.serverless.submit(endpoint_id, body, api_key=api_key, sync=sync)

    async def job_status(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self.serverless.status(endpoint_id, job_id, api_key=api_key)

    async def cancel_job(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self.serverless.cancel(endpoint_id, job_id, api_key=api_key)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

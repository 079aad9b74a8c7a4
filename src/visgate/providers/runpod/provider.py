"""`RunpodProvider`: the `GpuProvider` protocol on Runpod serverless.

Each deployment owns one template and one endpoint, both named `spec.name`. Lookups by
name come first everywhere, so a step retried after a crash (even one that lost the answer
to a create call) finds what the earlier try made instead of making a second one.
"""

from __future__ import annotations

from typing import Any

from visgate.domain.errors import (
    RunpodAPIError,
    RunpodInsufficientGPUError,
    WorkerLogsUnavailableError,
)
from visgate.logging import get_logger
from visgate.providers.base import (
    EndpointRef,
    EndpointSpec,
    GpuType,
    ProviderEndpoint,
    WorkerLogLine,
)
from visgate.providers.runpod import operations as ops
from visgate.providers.runpod.backend import RunpodBackend
from visgate.providers.runpod.graphql_api import RunpodGraphQL
from visgate.providers.runpod.messages import is_duplicate_name, is_in_use, is_not_found
from visgate.providers.runpod.payloads import (
    endpoint_input,
    gpu_type,
    named,
    only,
    pools_of,
    provider_endpoint,
    scaled_to_zero,
    spec_template_input,
    template_matches,
)
from visgate.providers.runpod.retry import Transient

log = get_logger(__name__)


class RunpodProvider(RunpodBackend):
    def __init__(self, graphql_url: str, api_base: str, **options: Any) -> None:
        """`options`: `timeout`, `retry_attempts`, `max_retry_wait` (see RunpodBackend)."""
        super().__init__(api_base, **options)
        self.graphql = RunpodGraphQL(graphql_url, timeout=self.timeout, policy=self.policy)

    # --- lookups ---------------------------------------------------------------------

    async def _templates(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        data = await self.graphql.execute(ops.LIST_TEMPLATES, api_key=api_key, retry=retry)
        return [t for t in (data.get("myself") or {}).get("podTemplates") or [] if t]

    async def _endpoints(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        data = await self.graphql.execute(ops.LIST_ENDPOINTS, api_key=api_key, retry=retry)
        return [e for e in (data.get("myself") or {}).get("endpoints") or [] if e]

    def _ref(self, row: dict[str, Any], template_id: str | None = None) -> EndpointRef:
        return EndpointRef(
            endpoint_id=str(row["id"]),
            template_id=str(template_id or row.get("templateId") or ""),
            name=str(row["name"]),
            url=self.serverless.endpoint_url(str(row["id"])),
            gpu_pools=pools_of(row.get("gpuIds")),
        )

    # --- GpuProvider -----------------------------------------------------------------

    async def _ensure_template(self, spec: EndpointSpec, api_key: str, *, look: bool) -> str:
        found = await self._existing_templates(spec.name, api_key, look=look)
        if found and template_matches(found[0], spec):
            return str(found[0]["id"])
        template_id = str(found[0]["id"]) if found else None
        try:
            data = await self.graphql.execute(
                ops.SAVE_TEMPLATE,
                {"input": spec_template_input(spec, template_id)},
                api_key=api_key,
                retry=False,
            )
        except RunpodAPIError as exc:
            if template_id is None and is_duplicate_name(exc.message):
                # Another try created it between our lookup and our create.
                raise Transient(f"template {spec.name} appeared meanwhile") from None
            raise
        saved = data["saveTemplate"]
        log.info(
            "runpod_template_saved",
            name=spec.name,
            template_id=saved["id"],
            updated=template_id is not None,
        )
        return str(saved["id"])

    async def _ensure_endpoint_row(
        self, spec: EndpointSpec, template_id: str, api_key: str, *, look: bool
    ) -> EndpointRef:
        found = await self._existing_endpoints(spec.name, api_key, look=look)
        current = next((e for e in found if e.get("templateId") == template_id), None)
        if current is not None:
            return self._ref(current, template_id)
        endpoint_id = str(found[0]["id"]) if found else None
        data = await self.graphql.execute(
            ops.SAVE_ENDPOINT,
            {"input": endpoint_input(spec, template_id, endpoint_id)},
            api_key=api_key,
            retry=False,
        )
        saved = data["saveEndpoint"]
        log.info(
            "runpod_endpoint_saved",
            name=spec.name,
            endpoint_id=saved["id"],
            pools=saved.get("gpuIds"),
            updated=endpoint_id is not None,
        )
        return self._ref(saved, template_id)

    async def find_endpoint(self, name: str, *, api_key: str) -> EndpointRef | None:
        found = named(await self._endpoints(api_key), name)
        return self._ref(found[0]) if found else None

    async def set_gpu_pools(
        self, ref: EndpointRef, spec: EndpointSpec, *, api_key: str
    ) -> EndpointRef:
        if not spec.gpu_pools:
            raise RunpodInsufficientGPUError(f"no GPU pool left to try for {spec.name}")
        data = await self.graphql.execute(
            ops.SAVE_ENDPOINT,
            {"input": endpoint_input(spec, ref.template_id, ref.endpoint_id)},
            api_key=api_key,
        )
        saved = data["saveEndpoint"]
        log.info("runpod_endpoint_pools", name=spec.name, pools=saved.get("gpuIds"))
        return self._ref(saved, ref.template_id)

    async def teardown(self, name: str, *, api_key: str, endpoint_id: str | None = None) -> None:
        for row in only(named(await self._endpoints(api_key), name), endpoint_id):
            await self._delete_endpoint(row, api_key)
        if endpoint_id is None and named(await self._templates(api_key), name):
            await self._delete_template(name, api_key)
        log.info("runpod_teardown_done", name=name)

    async def _delete_endpoint(self, row: dict[str, Any], api_key: str) -> None:
        """Scale to zero, then delete. Only `deleteEndpoint` may be answered "not found",
        and even then the endpoint counts as gone only once a fresh listing agrees: an
        endpoint left behind keeps billing its workers."""
        scale_refusal = await self._scale_to_zero(row, api_key)
        endpoint_id = str(row["id"])
        try:
            await self.graphql.execute(ops.DELETE_ENDPOINT, {"id": endpoint_id}, api_key=api_key)
        except RunpodAPIError as exc:
            if not is_not_found(exc.message) or await self._still_listed(endpoint_id, api_key):
                raise _delete_refused(row, exc, scale_refusal) from exc
        log.info("runpod_endpoint_deleted", name=row.get("name"), endpoint_id=endpoint_id)

    async def _scale_to_zero(self, row: dict[str, Any], api_key: str) -> RunpodAPIError | None:
        """Runpod wants no workers before a delete. A refusal here (e.g. "Template not
        found" for an endpoint whose template is gone) is returned, not raised: the delete
        is tried anyway and decides. Transient and auth failures propagate."""
        if not (row.get("workersMin") or row.get("workersMax")):
            return None
        try:
            await self.graphql.execute(
                ops.SAVE_ENDPOINT, {"input": scaled_to_zero(row)}, api_key=api_key
            )
        except RunpodAPIError as exc:
            log.warning(
                "runpod_scale_to_zero_refused",
                name=row.get("name"),
                endpoint_id=row["id"],
                reason=exc.message,
            )
            return exc
        return None

    async def _still_listed(self, endpoint_id: str, api_key: str) -> bool:
        return any(str(e.get("id")) == endpoint_id for e in await self._endpoints(api_key))

    async def _delete_template(self, name: str, api_key: str) -> None:
        async def once() -> None:
            try:
                await self.graphql.execute(
                    ops.DELETE_TEMPLATE, {"templateName": name}, api_key=api_key, retry=False
                )
            except RunpodAPIError as exc:
                if is_not_found(exc.message):
                    return
                if is_in_use(exc.message):
                    # Runpod frees a template up to ~2 min after its endpoint is deleted.
                    raise Transient(f"template {name} is still in use on Runpod") from None
                raise

        await self.policy.run(once, what="delete_template")

    async def list_endpoints(self, *, api_key: str) -> list[ProviderEndpoint]:
        return [provider_endpoint(row) for row in await self._endpoints(api_key)]

    async def gpu_types(self, *, api_key: str) -> list[GpuType]:
        data = await self.graphql.execute(ops.GPU_TYPES, api_key=api_key)
        return [gpu_type(row) for row in data.get("gpuTypes") or [] if row and row.get("id")]

    async def worker_logs(
        self, endpoint_id: str, *, api_key: str, lines: int
    ) -> list[WorkerLogLine]:
        raise WorkerLogsUnavailableError(
            "Runpod's GraphQL API has no call for workers' logs: set RUNPOD_API=rest"
        )

    async def endpoint_spend(self, endpoint_id: str, *, api_key: str, since: float) -> float | None:
        """Runpod's GraphQL API documents no billing query: there is no billed figure to read."""
        return None

    async def aclose(self) -> None:
        await self.graphql.aclose()
        await self.serverless.aclose()


def _delete_refused(
    row: dict[str, Any], refused: RunpodAPIError, scale_refusal: RunpodAPIError | None
) -> RunpodAPIError:
    """Why an endpoint is still there, with the scale-down refusal when there was one."""
    name = row.get("name") or row["id"]
    if scale_refusal is None:
        return RunpodAPIError(f"endpoint {name} was not deleted: {refused.message}")
    return RunpodAPIError(
        f"endpoint {name} was not deleted: scaling it to zero workers failed "
        f"({scale_refusal.message}), then {refused.message}"
    )

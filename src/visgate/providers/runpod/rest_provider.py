"""`RunpodRestProvider`: the `GpuProvider` protocol on Runpod's REST API v2.

The same rules as the GraphQL backend (`RunpodProvider`): each deployment owns one
template and one endpoint, both named `spec.name`, and a repeat looks both up by name
before creating, so a step retried after a crash or a lost answer never makes a second.
Health and jobs go through the endpoint's job API, shared with the GraphQL backend.

What differs on v2: env is a map; an endpoint copies its template's settings once at
create, so an endpoint found by name is checked against the spec itself (and patched with
`templateId` when it runs something else); a template still bound to an endpoint cannot be
deleted, so teardown deletes endpoints first and retries the template while Runpod frees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from visgate.domain.errors import RunpodAPIError, RunpodInsufficientGPUError
from visgate.logging import get_logger
from visgate.providers.base import (
    EndpointRef,
    EndpointSpec,
    GpuType,
    ProviderEndpoint,
    WorkerLogLine,
)
from visgate.providers.runpod import rest_payloads as body
from visgate.providers.runpod.backend import RunpodBackend
from visgate.providers.runpod.messages import is_duplicate_name, is_in_use
from visgate.providers.runpod.payloads import named, only
from visgate.providers.runpod.rest_api import (
    RestNotFound,
    RunpodBadAnswerError,
    RunpodRest,
    items,
    require,
)
from visgate.providers.runpod.rest_bootstrap import list_gpu_types_rest
from visgate.providers.runpod.retry import Transient
from visgate.providers.worker_logs import bounded

log = get_logger(__name__)

MAX_WORKERS_READ = 5  # each worker is one log stream to open: bound the route's latency


class RunpodRestProvider(RunpodBackend):
    def __init__(self, rest_url: str, api_base: str, **options: Any) -> None:
        """`options`: `timeout`, `retry_attempts`, `max_retry_wait` (see RunpodBackend)."""
        super().__init__(api_base, **options)
        self.rest = RunpodRest(rest_url, timeout=self.timeout, policy=self.policy)

    # --- lookups ---------------------------------------------------------------------

    async def _templates(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        data = await self.rest.call("GET", "/templates", api_key=api_key, retry=retry)
        return items(data, "templates", what="GET /templates")

    async def _endpoints(self, api_key: str, *, retry: bool = True) -> list[dict[str, Any]]:
        data = await self.rest.call("GET", "/serverless", api_key=api_key, retry=retry)
        return items(data, "endpoints", what="GET /serverless")

    def _ref(self, row: dict[str, Any], template_id: str = "") -> EndpointRef:
        return EndpointRef(
            endpoint_id=str(row["id"]),
            template_id=template_id,
            name=str(row["name"]),
            url=self.serverless.endpoint_url(str(row["id"])),
            gpu_pools=body.pools_of(row),
        )

    # --- GpuProvider -----------------------------------------------------------------

    async def _ensure_template(self, spec: EndpointSpec, api_key: str, *, look: bool) -> str:
        found = await self._existing_templates(spec.name, api_key, look=look)
        if found and body.template_matches(found[0], spec):
            return str(found[0]["id"])
        if found:
            template_id = str(found[0]["id"])
            await self.rest.call(
                "PATCH",
                f"/templates/{template_id}",
                api_key=api_key,
                body=body.template_update(spec),
                retry=False,
            )
            log.info("runpod_template_saved", name=spec.name, template_id=template_id, updated=True)
            return template_id
        try:
            data = await self.rest.call(
                "POST", "/templates", api_key=api_key, body=body.template_body(spec), retry=False
            )
        except RunpodAPIError as exc:
            if is_duplicate_name(exc.message):
                # Another try created it between our lookup and our create.
                raise Transient(f"template {spec.name} appeared meanwhile") from None
            raise
        saved = require(data, "id", what="POST /templates")
        log.info("runpod_template_saved", name=spec.name, template_id=saved["id"], updated=False)
        return str(saved["id"])

    async def _ensure_endpoint_row(
        self, spec: EndpointSpec, template_id: str, api_key: str, *, look: bool
    ) -> EndpointRef:
        found = await self._existing_endpoints(spec.name, api_key, look=look)
        current = next((e for e in found if body.endpoint_matches(e, spec)), None)
        if current is not None:
            return self._ref(current, template_id)
        if found:
            # It runs older settings: apply the template again (v2 copied it once).
            endpoint_id = str(found[0]["id"])
            data = await self.rest.call(
                "PATCH",
                f"/serverless/{endpoint_id}",
                api_key=api_key,
                body=body.endpoint_update(spec, template_id),
                retry=False,
            )
            saved = require(data, "id", "name", what="PATCH /serverless/{id}")
            updated = True
        else:
            data = await self.rest.call(
                "POST",
                "/serverless",
                api_key=api_key,
                body=body.endpoint_body(spec, template_id),
                retry=False,
            )
            saved = require(data, "id", "name", what="POST /serverless")
            updated = False
        log.info(
            "runpod_endpoint_saved",
            name=spec.name,
            endpoint_id=saved["id"],
            pools=body.pools_of(saved),
            updated=updated,
        )
        return self._ref(saved, template_id)

    async def find_endpoint(self, name: str, *, api_key: str) -> EndpointRef | None:
        found = named(await self._endpoints(api_key), name)
        if not found:
            return None
        templates = named(await self._templates(api_key), name)
        return self._ref(found[0], str(templates[0]["id"]) if templates else "")

    async def set_gpu_pools(
        self, ref: EndpointRef, spec: EndpointSpec, *, api_key: str
    ) -> EndpointRef:
        if not spec.gpu_pools:
            raise RunpodInsufficientGPUError(f"no GPU pool left to try for {spec.name}")
        data = await self.rest.call(
            "PATCH",
            f"/serverless/{ref.endpoint_id}",
            api_key=api_key,
            body=body.endpoint_update(spec),
        )
        saved = require(data, "id", "name", what="PATCH /serverless/{id}")
        log.info("runpod_endpoint_pools", name=spec.name, pools=body.pools_of(saved))
        return self._ref(saved, ref.template_id)

    async def teardown(self, name: str, *, api_key: str, endpoint_id: str | None = None) -> None:
        for row in only(named(await self._endpoints(api_key), name), endpoint_id):
            await self._delete("serverless", str(row["id"]), api_key)
            log.info("runpod_endpoint_deleted", name=name, endpoint_id=row["id"])
        if endpoint_id is not None:
            return  # one duplicate goes; the template serves the endpoint that stays
        for row in named(await self._templates(api_key), name):
            await self._delete_template(str(row["id"]), name, api_key)
        log.info("runpod_teardown_done", name=name)

    async def _delete(
        self, kind: str, resource_id: str, api_key: str, *, retry: bool = True
    ) -> None:
        """DELETE; a 404 means it is gone already, which is what we wanted."""
        try:
            await self.rest.call("DELETE", f"/{kind}/{resource_id}", api_key=api_key, retry=retry)
        except RestNotFound:
            return

    async def _delete_template(self, template_id: str, name: str, api_key: str) -> None:
        async def once() -> None:
            try:
                await self._delete("templates", template_id, api_key, retry=False)
            except RunpodAPIError as exc:
                if is_in_use(exc.message):
                    # Runpod frees a template a while after its endpoint is deleted.
                    raise Transient(f"template {name} is still in use on Runpod") from None
                raise

        await self.policy.run(once, what="delete_template")

    async def list_endpoints(self, *, api_key: str) -> list[ProviderEndpoint]:
        return [body.provider_endpoint(row) for row in await self._endpoints(api_key)]

    async def gpu_types(self, *, api_key: str) -> list[GpuType]:
        return await list_gpu_types_rest(self.rest, api_key=api_key)

    async def worker_logs(
        self, endpoint_id: str, *, api_key: str, lines: int
    ) -> list[WorkerLogLine]:
        """Each worker's last `lines` lines (`GET .../workers`, then its log stream with
        `tail`), merged by time; at most `MAX_WORKERS_READ` workers are read."""
        path = f"/serverless/{endpoint_id}/workers"
        workers = items(await self.rest.call("GET", path, api_key=api_key), "workers", what=path)
        out: list[WorkerLogLine] = []
        for worker in workers[:MAX_WORKERS_READ]:
            worker_id = str(worker["id"])
            events = await self.rest.events(
                f"{path}/{worker_id}/logs",
                api_key=api_key,
                params={"tail": str(lines)},
                limit=lines,
            )
            out += [
                WorkerLogLine(
                    worker_id=worker_id,
                    line=str(e.get("line") or ""),
                    ts=str(e["ts"]) if e.get("ts") else None,
                    source=str(e["source"]) if e.get("source") else None,
                )
                for e in events
            ]
        out.sort(key=lambda entry: entry.ts or "")
        return bounded(out, lines)

    async def endpoint_spend(self, endpoint_id: str, *, api_key: str, since: float) -> float | None:
        """`GET /v2/billing/serverless` for this endpoint in daily buckets from the UTC day
        of `since`: Runpod snaps a start down to its bucket anyway, and asking with the day's
        start says so (the endpoint did not bill before it existed). None while Runpod has
        no record for it yet: billing lags usage."""
        day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT00:00:00Z")
        params = {"serverlessId": endpoint_id, "startTime": day, "bucketSize": "day"}
        what = "GET /billing/serverless"
        data = await self.rest.call("GET", "/billing/serverless", api_key=api_key, params=params)
        return _billed_total(require(data, what=what), what)

    async def aclose(self) -> None:
        await self.rest.aclose()
        await self.serverless.aclose()


def _billed_total(data: dict[str, Any], what: str) -> float | None:
    """`metadata.totals.totalAmount` of a billing answer, or None when it has no records."""
    records, metadata = data.get("records"), data.get("metadata")
    totals = metadata.get("totals") if isinstance(metadata, dict) else None
    if not isinstance(records, list) or not isinstance(totals, dict):
        raise RunpodBadAnswerError(f"Runpod's answer to {what} has no records and totals")
    if not records:
        return None
    amount = totals.get("totalAmount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise RunpodBadAnswerError(f"Runpod's answer to {what} has no totalAmount in USD")
    return float(amount)

"""The operator's shared worker template and the GPU list on Runpod REST API v2: the same
`visgate template create` / `visgate gpus` as on GraphQL (bootstrap.py), with v2 bodies.

Idempotent in the same way: a template of that name is patched in place, never duplicated;
a dry run sends no change and returns the requests it would send, secrets redacted.
"""

from __future__ import annotations

from typing import Any

from visgate.providers.base import EndpointSpec, GpuType
from visgate.providers.runpod import rest_payloads as body
from visgate.providers.runpod.bootstrap import REDACTED, SECRET_NAME, PlannedOperation
from visgate.providers.runpod.rest_api import RunpodRest, items, require


def _plan(method: str, path: str, payload: dict[str, Any] | None = None) -> PlannedOperation:
    payload = dict(payload or {})
    if "env" in payload:
        payload["env"] = {
            k: REDACTED if SECRET_NAME.search(k) else v for k, v in payload["env"].items()
        }
    return PlannedOperation(f"{method} {path}", f"{method} {path}", payload)


async def ensure_shared_template_rest(
    rest: RunpodRest,
    *,
    name: str,
    image: str,
    env: dict[str, str],
    container_disk_gb: int,
    api_key: str,
    dry_run: bool = False,
) -> tuple[str | None, list[PlannedOperation]]:
    """Create or patch the serverless template `name`; returns its id (None on a dry run
    that found none) and the requests sent, or to be sent on a dry run."""
    spec = EndpointSpec(
        name=name, image=image, env=env, gpu_pools=[], container_disk_gb=container_disk_gb
    )

    async def plan(*, retry: bool) -> tuple[str | None, list[PlannedOperation]]:
        existing_id: str | None = None
        if api_key:
            data = await rest.call("GET", "/templates", api_key=api_key, retry=retry)
            rows = items(data, "templates", what="GET /templates")
            existing_id = next((str(t["id"]) for t in rows if t.get("name") == name), None)
        change = (
            _plan("PATCH", f"/templates/{existing_id}", body.template_update(spec))
            if existing_id
            else _plan("POST", "/templates", body.template_body(spec))
        )
        return existing_id, [_plan("GET", "/templates"), change]

    if dry_run:
        return await plan(retry=True)

    async def once() -> tuple[str, list[PlannedOperation]]:
        # Looked up again on every try, so a lost answer to a create is not repeated.
        existing_id, planned = await plan(retry=False)
        if existing_id:
            path, payload = f"/templates/{existing_id}", body.template_update(spec)
            data = await rest.call("PATCH", path, api_key=api_key, body=payload, retry=False)
        else:
            payload = body.template_body(spec)
            data = await rest.call("POST", "/templates", api_key=api_key, body=payload, retry=False)
        return str(require(data, "id", what="save template")["id"]), planned

    return await rest.policy.run(once, what="ensure_shared_template")


async def list_gpu_types_rest(rest: RunpodRest, *, api_key: str) -> list[GpuType]:
    """Runpod's serverless GPU types with pool, stock and price, smallest memory first."""
    data = await rest.call("GET", "/catalog/gpus", api_key=api_key, params=body.GPU_CATALOGUE_QUERY)
    types = [body.gpu_type(row) for row in items(data, "gpus", what="GET /catalog/gpus")]
    return sorted(types, key=lambda g: (g.memory_gb, g.display_name))

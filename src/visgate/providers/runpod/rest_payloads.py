"""Between our dataclasses and Runpod REST v2 bodies and rows.

Field names follow Runpod's published OpenAPI document for v2 (CreateTemplateRequest,
CreateEndpointRequest, UpdateEndpointRequest, Endpoint, GpuType). v2 refuses unknown
fields with 422, so nothing is sent that the document does not name. Env is a map in v2
(a list of `{key, value}` in GraphQL). An endpoint made from `templateId` copies the
template's settings once: later template edits do not reach it, so an endpoint is compared
with the spec by its own image and env.
"""

from __future__ import annotations

from typing import Any

from visgate.providers.base import EndpointSpec, GpuType, ProviderEndpoint
from visgate.providers.runpod.payloads import MAX_POOLS

GPU_CATALOGUE_QUERY = {"include": "AVAILABILITY", "product": "SERVERLESS"}


def template_body(spec: EndpointSpec) -> dict[str, Any]:
    """A serverless template. SSH and Jupyter are off: both default to on in v2 and would
    inject `PUBLIC_KEY` / `JUPYTER_PASSWORD` into a worker that serves neither."""
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "env": {k: str(v) for k, v in spec.env.items()},
        "args": "",
        "disk": spec.container_disk_gb,
        "ports": [],
        "serverless": True,
        "startSsh": False,
        "startJupyter": False,
    }
    if spec.registry_auth_id:
        body["registry"] = spec.registry_auth_id
    return body


def template_update(spec: EndpointSpec) -> dict[str, Any]:
    """A PATCH that brings a listed template of this name back to the spec."""
    body = template_body(spec)
    for key in ("name", "serverless", "startSsh", "startJupyter"):
        body.pop(key)
    return body


def template_matches(row: dict[str, Any], spec: EndpointSpec) -> bool:
    return (
        row.get("image") == spec.image
        and (row.get("env") or {}) == {k: str(v) for k, v in spec.env.items()}
        and row.get("disk") == spec.container_disk_gb
    )


def _scaling(spec: EndpointSpec) -> dict[str, Any]:
    if spec.scaler_type == "REQUEST_COUNT":
        return {"type": "REQUEST_COUNT", "requestCount": spec.scaler_value}
    return {"type": "QUEUE_DELAY", "queueDelay": spec.scaler_value}


def endpoint_body(spec: EndpointSpec, template_id: str) -> dict[str, Any]:
    """A queue endpoint from our template. `timeout` is always sent: a create without it
    reads back 0 on Runpod (a reported quirk), whatever the document's default says.
    `dataCenterIds` goes only with a region: left out, Runpod may place workers anywhere,
    which its docs advise for capacity."""
    body: dict[str, Any] = {
        "name": spec.name,
        "type": "QUEUE",
        "templateId": template_id,
        "gpu": {"pools": spec.gpu_pools[:MAX_POOLS], "count": 1},
        "workers": {
            "min": spec.workers_min,
            "max": spec.workers_max,
            "idleTimeout": spec.idle_timeout_s,
        },
        "scaling": _scaling(spec),
        "flashboot": "FLASHBOOT" if spec.flashboot else "OFF",
        "timeout": spec.execution_timeout_ms,
    }
    if spec.data_center_ids:
        body["dataCenterIds"] = list(spec.data_center_ids)
    return body


def endpoint_update(spec: EndpointSpec, template_id: str | None = None) -> dict[str, Any]:
    """A PATCH resending what we own (PATCH changes only the fields given). With
    `template_id` the template's container settings are applied again, once."""
    body = endpoint_body(spec, template_id or "")
    body.pop("type")
    if not template_id:
        body.pop("templateId")
    return body


def endpoint_matches(row: dict[str, Any], spec: EndpointSpec) -> bool:
    """The endpoint already runs the spec's image and env (extra env Runpod adds is fine)."""
    env = row.get("env") or {}
    wanted = {k: str(v) for k, v in spec.env.items()}
    return row.get("image") == spec.image and all(env.get(k) == v for k, v in wanted.items())


def pools_of(row: dict[str, Any]) -> list[str]:
    gpu = row.get("gpu") or {}
    return [str(p) for p in gpu.get("pools") or [] if p]


def provider_endpoint(row: dict[str, Any]) -> ProviderEndpoint:
    workers = row.get("workers") or {}
    return ProviderEndpoint(
        endpoint_id=str(row["id"]),
        name=str(row.get("name") or ""),
        template_id=None,  # v2 endpoints keep no link to a template
        gpu_pools=pools_of(row),
        workers_min=int(workers.get("min") or 0),
        workers_max=int(workers.get("max") or 0),
    )


def gpu_type(row: dict[str, Any]) -> GpuType:
    price = (row.get("price") or {}).get("serverless")
    return GpuType(
        id=str(row["id"]),
        display_name=str(row.get("name") or row["id"]),
        memory_gb=float(row.get("memory") or 0),
        pool=str(row["pool"]) if row.get("pool") else None,
        availability=str(row["availability"]) if row.get("availability") else None,
        price_per_hour=float(price) if isinstance(price, int | float) else None,
    )

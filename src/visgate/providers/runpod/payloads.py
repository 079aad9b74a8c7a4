"""Between our dataclasses and Runpod's GraphQL inputs and rows.

`saveEndpoint` with an `id` replaces EVERY field (an omitted one resets to its default), so
every update is built in full, from the spec or from the endpoint's listed row.
"""

from __future__ import annotations

from typing import Any

from visgate.providers.base import EndpointSpec, GpuType, ProviderEndpoint

MAX_POOLS = 3  # Runpod takes at most three pool priorities in gpuIds


def named(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The rows (templates or endpoints, either API) called `name`, oldest id first."""
    return sorted((r for r in rows if r.get("name") == name), key=lambda r: str(r.get("id")))


def only(rows: list[dict[str, Any]], row_id: str | None) -> list[dict[str, Any]]:
    """The row with that id among `rows` (all of them when `row_id` is None)."""
    return rows if row_id is None else [r for r in rows if str(r.get("id")) == row_id]


def pools_of(gpu_ids: str | None) -> list[str]:
    return [p.strip() for p in (gpu_ids or "").split(",") if p.strip()]


def env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in sorted(env.items())]


def env_dict(rows: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(r["key"]): str(r.get("value") or "") for r in rows or [] if r and r.get("key")}


def template_input(
    *,
    name: str,
    image: str,
    env: dict[str, str],
    container_disk_gb: int,
    template_id: str | None,
    registry_auth_id: str | None = None,
) -> dict[str, Any]:
    """A serverless template. `dockerArgs: ""` must be sent (without it Runpod answered
    "Something went wrong"); serverless templates have no volume (volumeInGb 0). A registry
    credential (`containerRegistryAuthId`, for private images) goes only when given."""
    data: dict[str, Any] = {
        "name": name,
        "imageName": image,
        "isServerless": True,
        "containerDiskInGb": container_disk_gb,
        "volumeInGb": 0,
        "dockerArgs": "",
        "ports": "",
        "env": env_list(env),
    }
    if registry_auth_id:
        data["containerRegistryAuthId"] = registry_auth_id
    if template_id:
        data["id"] = template_id
    return data


def spec_template_input(spec: EndpointSpec, template_id: str | None = None) -> dict[str, Any]:
    return template_input(
        name=spec.name,
        image=spec.image,
        env=spec.env,
        container_disk_gb=spec.container_disk_gb,
        template_id=template_id,
        registry_auth_id=spec.registry_auth_id,
    )


def template_matches(row: dict[str, Any], spec: EndpointSpec) -> bool:
    """Whether the listed template already is what `spec` asks for. The registry credential
    is not compared: Runpod documents it as a `saveTemplate` input, not as a listed field,
    so it is set whenever the template is created or saved for another change."""
    return (
        row.get("imageName") == spec.image
        and env_dict(row.get("env")) == {k: str(v) for k, v in spec.env.items()}
        and row.get("containerDiskInGb") == spec.container_disk_gb
    )


def endpoint_input(
    spec: EndpointSpec, template_id: str, endpoint_id: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": spec.name,
        "templateId": template_id,
        "gpuIds": ",".join(spec.gpu_pools[:MAX_POOLS]),
        "gpuCount": 1,
        "workersMin": spec.workers_min,
        "workersMax": spec.workers_max,
        "idleTimeout": spec.idle_timeout_s,
        "scalerType": spec.scaler_type,
        "scalerValue": spec.scaler_value,
        "flashBootType": "FLASHBOOT" if spec.flashboot else "OFF",
        "executionTimeoutMs": spec.execution_timeout_ms,
    }
    if spec.data_center_ids:  # a comma-separated list of data-centre ids
        data["locations"] = ",".join(spec.data_center_ids)
    if endpoint_id:
        data["id"] = endpoint_id
    return data


_RESENT = (
    "id",
    "name",
    "templateId",
    "gpuIds",
    "gpuCount",
    "idleTimeout",
    "scalerType",
    "scalerValue",
    "flashBootType",
    "executionTimeoutMs",
    "locations",
)


def scaled_to_zero(row: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as listed, every field resent, with no workers (deleteEndpoint wants
    workersMin = workersMax = 0 first)."""
    data = {k: row[k] for k in _RESENT if row.get(k) is not None}
    data.update(workersMin=0, workersMax=0)
    return data


def provider_endpoint(row: dict[str, Any]) -> ProviderEndpoint:
    return ProviderEndpoint(
        endpoint_id=str(row["id"]),
        name=str(row.get("name") or ""),
        template_id=row.get("templateId"),
        gpu_pools=pools_of(row.get("gpuIds")),
        workers_min=int(row.get("workersMin") or 0),
        workers_max=int(row.get("workersMax") or 0),
    )


def gpu_type(row: dict[str, Any]) -> GpuType:
    return GpuType(
        id=str(row["id"]),
        display_name=str(row.get("displayName") or row["id"]),
        memory_gb=float(row.get("memoryInGb") or 0),
    )

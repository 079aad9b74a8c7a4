"""The operations of the fake Runpod's REST API v2 over the account GraphQL also serves
(FakeRunpodState): rows keep their GraphQL shape (`gpuIds` comma string, `env` as
`[{key, value}]`, `templateId`, `workersMin`/`workersMax`, ...) and are converted to and
from the v2 shapes here. Routing, auth, faults and the contract checks: runpod_rest.py.

Where Runpod's OpenAPI document is silent the fake takes the stricter reading:
- `templateId` is resolved once at create into `snapshot` (image, args, disk, ports, env,
  registry) on the row; later template edits do not reach the endpoint. The row keeps
  `templateId`, so GraphQL lists it and `deleteTemplate` is refused (400) while it is bound.
- An endpoint created from `image` alone gets a hidden template of its own (as Runpod makes
  one); `DELETE /v2/serverless/{id}` deletes that one ("and its bound template"), never a
  template the caller made and named in `templateId`.
- A create without `timeout` reads back 0 (a reported Runpod quirk), not the documented
  default of 300000.
- Duplicate template names: 400 (createTemplate documents 400 and 422, not 409).
- `workers.max` summed over the account above `worker_quota`: 400 with QUOTA_MESSAGE.
- `DELETE /v2/serverless/{id}` needs no scale-down first (the document: "all workers are
  terminated"); queued and running jobs are cancelled.
- `workers.min > workers.max`, or `idleTimeout` on a QUEUE endpoint scaled on
  REQUEST_COUNT: 400.
"""

from __future__ import annotations

import json
import math
import time
from http import HTTPStatus
from typing import Any

from tests.fakes.runpod_state import (
    ENDPOINT_DEFAULTS,
    POOLS,
    QUOTA_MESSAGE,
    FakeRunpodState,
    new_id,
)

# GPU types of the REST catalogue: (id, name, memory GB, pool, serverless $/h per GPU).
CATALOG: list[tuple[str, str, int, str | None, float]] = [
    ("NVIDIA RTX A4000", "RTX A4000", 16, "AMPERE_16", 0.58),
    ("NVIDIA RTX A5000", "RTX A5000", 24, "AMPERE_24", 0.68),
    ("NVIDIA L4", "L4", 24, "ADA_24", 0.79),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 24, "ADA_24", 1.1),
    ("NVIDIA GeForce RTX 5090", "RTX 5090", 32, "ADA_32_PRO", 1.58),
    ("NVIDIA A40", "A40", 48, "AMPERE_48", 1.22),
    ("NVIDIA L40S", "L40S", 48, "ADA_48_PRO", 1.9),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, "AMPERE_80", 2.72),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 80, "ADA_80_PRO", 4.18),
    ("NVIDIA RTX PRO 6000 Blackwell", "RTX PRO 6000", 96, "BLACKWELL_96", 3.4),
    ("NVIDIA H200", "H200", 141, "HOPPER_141", 5.58),
    ("NVIDIA B200", "B200", 180, "BLACKWELL_180", 8.64),
    ("NVIDIA RTX A6000", "RTX A6000", 48, None, 0.0),  # pods only: in no serverless pool
]
DATA_CENTER = ("US-KS-2", "United States (Kansas 2)")
WORKER_STATUS = {
    "running": "RUNNING",
    "ready": "IDLE",
    "idle": "IDLE",
    "initializing": "INITIALIZING",
    "throttled": "THROTTLED",
    "unhealthy": "UNHEALTHY",
}


class Problem(Exception):
    """An answer in RFC 9457 problem+json, as Runpod's v2 errors are."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors

    def body(self) -> dict[str, Any]:
        title = HTTPStatus(self.status).phrase  # "Unprocessable Entity", as Runpod words it
        body: dict[str, Any] = {"title": title, "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- templates ---------------------------------------------------------------------------


def template_v2(row: dict[str, Any]) -> dict[str, Any]:
    size = row.get("volumeInGb") or 0
    mounts = {"persistent": {"size": size, "path": row.get("volumeMountPath") or "/workspace"}}
    return {
        "id": row["id"],
        "name": row["name"],
        "image": row["imageName"],
        "args": row.get("dockerArgs") or "",
        "disk": row.get("containerDiskInGb") or 1,
        "mounts": mounts if size else {},
        "ports": [p for p in (row.get("ports") or "").split(",") if p],
        "env": {e["key"]: e["value"] for e in row.get("env") or []},
        "registry": row.get("containerRegistryAuthId"),
        "serverless": bool(row.get("isServerless")),
        "public": bool(row.get("isPublic")),
        "category": row.get("category", "NVIDIA"),
        "startSsh": bool(row.get("startSsh")),
        "startJupyter": bool(row.get("startJupyter")),
        "allowedCudaVersions": list(row.get("allowedCudaVersions") or []),
    }


def _container(body: dict[str, Any]) -> dict[str, Any]:
    """Container settings of a v2 body as GraphQL template fields (only those given)."""
    names = {"image": "imageName", "args": "dockerArgs", "disk": "containerDiskInGb"}
    row = {names[k]: body[k] for k in names if k in body}
    if "ports" in body:
        row["ports"] = ",".join(body["ports"])
    if "env" in body:
        row["env"] = [{"key": k, "value": v} for k, v in body["env"].items()]
    if "registry" in body:
        row["containerRegistryAuthId"] = body["registry"]
    return row


def create_template(s: FakeRunpodState, body: dict[str, Any]) -> dict[str, Any]:
    if any(t["name"] == body["name"] for t in s.templates.values()):
        raise Problem(400, f"template name must be unique: {body['name']!r} exists")
    persistent = (body.get("mounts") or {}).get("persistent") or {}
    row = {
        "id": new_id(10),
        "name": body["name"],
        "imageName": body["image"],
        "dockerArgs": "",
        "containerDiskInGb": 20,
        "volumeInGb": persistent.get("size", 0),
        "volumeMountPath": persistent.get("path"),
        "ports": "",
        "readme": "",
        "env": [],
        "isServerless": body.get("serverless", False),
        "isPublic": body.get("public", False),
        "category": body.get("category", "NVIDIA"),
        "startSsh": body.get("startSsh", True),
        "startJupyter": body.get("startJupyter", True),
        "allowedCudaVersions": body.get("allowedCudaVersions", []),
        **_container(body),
    }
    s.templates[row["id"]] = row
    s._created.append(("template", row["id"], row["name"]))
    return template_v2(row)


def get_template(s: FakeRunpodState, template_id: str) -> dict[str, Any]:
    row = s.templates.get(template_id)
    if row is None:
        raise Problem(404, "template not found")
    return row


def delete_template(s: FakeRunpodState, template_id: str) -> None:
    row = get_template(s, template_id)
    users = [e["id"] for e in s.endpoints.values() if e["templateId"] == row["id"]]
    if users:
        raise Problem(400, f"template is in use: bound to serverless endpoint {users[0]}")
    if s._release_lag.get(row["id"], 0) > 0:
        s._release_lag[row["id"]] -= 1
        raise Problem(400, "template is in use: bound to a serverless endpoint being deleted")
    del s.templates[row["id"]]


# --- endpoints ---------------------------------------------------------------------------


def endpoint_v2(s: FakeRunpodState, row: dict[str, Any], base: str) -> dict[str, Any]:
    view = s._endpoint_view(row)
    template = view["template"] or {"imageName": "", "env": []}
    ep_id = row["id"]
    if row.get("type") == "LB":
        urls = {"base": f"{base}/lb/{ep_id}", "health": f"{base}/lb/{ep_id}/ping"}
    else:
        job = f"{base}/v2/{ep_id}"
        urls = {
            "run": f"{job}/run",
            "runSync": f"{job}/runsync",
            "status": f"{job}/status/{{job_id}}",
            "stream": f"{job}/stream/{{job_id}}",
            "cancel": f"{job}/cancel/{{job_id}}",
            "retry": f"{job}/retry/{{job_id}}",
            "purgeQueue": f"{job}/purge-queue",
            "health": f"{job}/health",
        }
    scaler = row["scalerType"]
    value = row.get("queueDelay", row["scalerValue"])
    scaling = (
        {"type": "REQUEST_COUNT", "requestCount": row["scalerValue"]}
        if scaler == "REQUEST_COUNT"
        else {"type": "QUEUE_DELAY", "queueDelay": value}
    )
    workers = {"min": row["workersMin"], "max": row["workersMax"]}
    if not (row.get("type") != "LB" and scaler == "REQUEST_COUNT"):
        workers["idleTimeout"] = row["idleTimeout"]
    volumes = row.get("networkVolumes") or [v for v in [row.get("networkVolumeId")] if v]
    return {
        "id": ep_id,
        "name": row["name"],
        "type": "LOAD_BALANCER" if row.get("type") == "LB" else "QUEUE",
        "requestUrls": urls,
        "image": template.get("imageName") or "",
        "args": template.get("dockerArgs") or "",
        "disk": template.get("containerDiskInGb") or 1,
        "ports": [p for p in (template.get("ports") or "").split(",") if p],
        "env": {e["key"]: e["value"] for e in view["env"]},
        "registry": template.get("containerRegistryAuthId"),
        "gpu": {
            "pools": row["gpuIds"].split(","),
            "count": row["gpuCount"],
            "allowedCudaVersions": list(row.get("allowedCudaVersions") or []),
            "minCudaVersion": row.get("minCudaVersion"),
            **({"excludedTypes": row["excludedTypes"]} if row.get("excludedTypes") else {}),
        },
        "workers": workers,
        "scaling": scaling,
        "dataCenterIds": [d for d in (row.get("locations") or "").split(",") if d],
        "networkVolumes": list(volumes),
        "timeout": row["executionTimeoutMs"],
        "flashboot": row.get("flashboot", row["flashBootType"]),
        "createdAt": row["createdAt"],
    }


def _check_gpu(gpu: dict[str, Any]) -> None:
    bad = [f"$.gpu.pools[{i}]: value must be one of {', '.join(repr(p) for p in sorted(POOLS))}"
           for i, p in enumerate(gpu.get("pools", [])) if p not in POOLS]  # fmt: skip
    if bad:
        raise Problem(422, "Request validation failed.", bad)
    if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
        raise Problem(400, "gpu.allowedCudaVersions and gpu.minCudaVersion are exclusive")
    in_pools = {c[0] for c in CATALOG if c[3] in gpu.get("pools", [])}
    for excluded in gpu.get("excludedTypes", []):
        if excluded.strip() not in in_pools:
            raise Problem(400, f"gpu.excludedTypes: {excluded.strip()!r} is in none of pools")
    if in_pools and in_pools <= {e.strip() for e in gpu.get("excludedTypes", [])}:
        raise Problem(400, "gpu.excludedTypes leaves no GPU type in pools")


def _apply(s: FakeRunpodState, row: dict[str, Any], body: dict[str, Any]) -> None:
    """Fields of a create or PATCH body onto a GraphQL-shaped row (only those given)."""
    gpu = body.get("gpu")
    if gpu is not None:
        _check_gpu(gpu)
        if "pools" in gpu:  # pools and exclusions are one selection: pools alone clears
            row["gpuIds"] = ",".join(gpu["pools"])
            row["excludedTypes"] = [e.strip() for e in gpu.get("excludedTypes", [])]
        if "count" in gpu:
            row["gpuCount"] = gpu["count"]
        if "allowedCudaVersions" in gpu:
            row["allowedCudaVersions"] = gpu["allowedCudaVersions"]
        if "minCudaVersion" in gpu:
            row["minCudaVersion"] = gpu["minCudaVersion"] or None
    if row.get("allowedCudaVersions") and row.get("minCudaVersion"):
        raise Problem(400, "gpu.allowedCudaVersions and gpu.minCudaVersion are exclusive")
    workers = body.get("workers") or {}
    for key, column in (("min", "workersMin"), ("max", "workersMax"), ("idleTimeout", "")):
        if key in workers:
            row[column or "idleTimeout"] = workers[key]
    if row["workersMin"] > row["workersMax"]:
        raise Problem(400, "workers.min cannot be greater than workers.max")
    if "scaling" in body:
        scaling = body["scaling"]
        row["scalerType"] = scaling["type"]
        value = scaling.get("queueDelay", scaling.get("requestCount"))
        row["scalerValue"] = math.ceil(value)
        row.pop("queueDelay", None)
        if "queueDelay" in scaling and value != row["scalerValue"]:
            row["queueDelay"] = value
    if row.get("type") == "LB" and row["scalerType"] != "REQUEST_COUNT":
        raise Problem(400, "LOAD_BALANCER endpoints scale on REQUEST_COUNT only")
    if (
        row.get("type") != "LB"
        and row["scalerType"] == "REQUEST_COUNT"
        and "idleTimeout" in workers
    ):
        raise Problem(400, "workers.idleTimeout does not apply to REQUEST_COUNT scaling")
    if "dataCenterIds" in body:
        row["locations"] = ",".join(body["dataCenterIds"]) or None
    if "networkVolumes" in body:
        row["networkVolumes"] = body["networkVolumes"]
        row["networkVolumeId"] = (body["networkVolumes"] or [None])[0]
    if "timeout" in body:
        row["executionTimeoutMs"] = body["timeout"]
    if "flashboot" in body:
        row["flashboot"] = body["flashboot"]
        row["flashBootType"] = "OFF" if body["flashboot"] == "OFF" else "FLASHBOOT"
    if "name" in body:
        row["name"] = body["name"]
    others = sum(e["workersMax"] for i, e in s.endpoints.items() if i != row["id"])
    if others + row["workersMax"] > s.worker_quota:
        raise Problem(400, QUOTA_MESSAGE.format(quota=s.worker_quota))


def _container_of(s: FakeRunpodState, body: dict[str, Any], base: dict[str, Any]) -> dict:
    """Container settings from `templateId` (if given) overlaid by the body's; env merged
    per key, body wins."""
    settings = dict(base)
    if "templateId" in body:
        template = s.templates.get(body["templateId"])
        if template is None:
            raise Problem(404, f"template {body['templateId']} not found")
        if not template.get("isServerless"):
            raise Problem(422, "templateId must name a serverless template")
        keys = ("imageName", "dockerArgs", "containerDiskInGb", "ports", "env")
        settings.update({k: template[k] for k in keys if k in template})
        settings["containerRegistryAuthId"] = template.get("containerRegistryAuthId")
    given = _container(body)
    env = {e["key"]: e["value"] for e in settings.get("env", [])}
    env.update({e["key"]: e["value"] for e in given.pop("env", [])})
    return {**settings, **given, "env": [{"key": k, "value": v} for k, v in env.items()]}


def create_endpoint(s: FakeRunpodState, body: dict[str, Any]) -> dict[str, Any]:
    if ("cpu" in body) == ("gpu" in body):
        raise Problem(400, "exactly one of gpu or cpu is required")
    if "cpu" in body:
        raise Problem(501, "the fake Runpod serves GPU endpoints only")
    row: dict[str, Any] = {
        **ENDPOINT_DEFAULTS,
        "idleTimeout": 10,  # v2's schema default; GraphQL's is 5
        "executionTimeoutMs": 0,  # no `timeout`: reads back 0, as reported of Runpod
        "type": "LB" if body["type"] == "LOAD_BALANCER" else "QB",
        "id": new_id(14),
        "userId": "user_fake",
        "name": body["name"],
        "gpuIds": "",
        "createdAt": _now(),
    }
    snapshot = _container_of(s, body, {"dockerArgs": "", "containerDiskInGb": 20, "ports": ""})
    template = s.templates.get(body.get("templateId", ""))
    gpu = dict(body["gpu"])
    if template and "allowedCudaVersions" not in gpu and "minCudaVersion" not in gpu:
        gpu["allowedCudaVersions"] = list(template.get("allowedCudaVersions") or [])
    _apply(s, row, {**body, "gpu": gpu})
    if template is None:  # Runpod makes the endpoint a template of its own
        own = {**snapshot, "id": new_id(10), "name": f"{row['name']}__{row['id']}"}
        s.templates[own["id"]] = {**own, "isServerless": True, "boundTo": row["id"]}
        row["templateId"] = own["id"]
    else:
        row["templateId"] = template["id"]
    row["snapshot"] = snapshot
    s.endpoints[row["id"]] = row
    s._created.append(("endpoint", row["id"], row["name"]))
    if row["workersMin"] >= 1:
        s._start_worker(row)  # min workers start at once; flex ones on the first job
    return row


def get_endpoint(s: FakeRunpodState, endpoint_id: str) -> dict[str, Any]:
    row = s.endpoints.get(endpoint_id)
    if row is None:
        raise Problem(404, "endpoint not found")
    return row


def update_endpoint(s: FakeRunpodState, endpoint_id: str, body: dict[str, Any]) -> dict:
    row = get_endpoint(s, endpoint_id)
    if "cpu" in body:
        raise Problem(400, "cpu given for a GPU endpoint: compute family is immutable")
    changed = json.loads(json.dumps(row))
    _apply(s, changed, body)
    container = {k for k in ("image", "args", "disk", "ports", "env", "registry") if k in body}
    if container or "templateId" in body:
        current = s._endpoint_view(row)["template"] or {}
        keep = ("imageName", "dockerArgs", "containerDiskInGb", "ports", "containerRegistryAuthId")
        base = {k: current.get(k) for k in keep}
        snapshot = _container_of(s, {k: v for k, v in body.items() if k != "env"}, base)
        if "env" in body or "templateId" in body:  # PATCH env replaces the endpoint's env
            merged = {e["key"]: e["value"] for e in snapshot["env"]} if "templateId" in body else {}
            merged.update(body.get("env", {}))
            snapshot["env"] = [{"key": k, "value": v} for k, v in merged.items()]
        else:
            snapshot["env"] = list(current.get("env") or [])
        changed["snapshot"] = snapshot
    s.endpoints[row["id"]] = changed
    if changed["workersMin"] >= 1:
        s._start_worker(changed)
    return changed


def delete_endpoint(s: FakeRunpodState, endpoint_id: str) -> None:
    row = get_endpoint(s, endpoint_id)
    del s.endpoints[row["id"]]
    for job in s.jobs.values():
        if job.endpoint_id == row["id"] and job.status in ("IN_QUEUE", "IN_PROGRESS"):
            job.status = "CANCELLED"
            job.done.set()
    bound = s.templates.get(row["templateId"])
    if bound is not None and bound.get("boundTo") == row["id"]:
        del s.templates[bound["id"]]
    else:
        s._release_lag[row["templateId"]] = s.template_release_lag

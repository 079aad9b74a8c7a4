"""Request and response bodies of the public API (their JSON Schema is the OpenAPI doc)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# The hub's repo id rules (huggingface_hub.utils.validate_repo_id), ASCII only:
# owner/name, letters, digits, '-', '_', '.', at most 96 per part, no '--' or '..',
# no leading/trailing '-' or '.', no '.git' suffix.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


MAX_WORKERS_PER_DEPLOYMENT = 100
MAX_TTL_SECONDS = 30 * 24 * 3600


class CreateDeployment(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    hf_model_id: str = Field(
        ...,
        max_length=193,
        description="Hugging Face repo id (`owner/name`) or a registry bundle such as `lumen/3d-pipeline`.",
        examples=["stabilityai/sdxl-turbo"],
    )
    user_runpod_key: SecretStr | None = Field(
        None, max_length=512, description="Your Runpod API key; the operator's is used when absent."
    )
    user_webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="Called (signed) when the deployment is ready, failed or deleted.",
    )
    gpu_tier: str | None = Field(None, max_length=64, description="A GPU tier from `GET /v1/gpus`.")
    hf_token: SecretStr | None = Field(
        None, max_length=512, description="Hugging Face token for gated or private models."
    )
    max_workers: int = Field(
        1,
        ge=1,
        le=MAX_WORKERS_PER_DEPLOYMENT,
        strict=True,
        description="The endpoint's worker cap (Runpod `workersMax`); at most the tenant's"
        " worker quota, and the sum over a tenant's active deployments is capped too.",
    )
    region: str | None = Field(
        None,
        min_length=2,
        max_length=16,
        description="Where workers may run: a Runpod data centre (`EU-RO-1`), a country"
        " (`US-TX`) or a continent prefix (`EU`, `US`, `CA`, `AP`, `OC`). Default: anywhere.",
        examples=["EU"],
    )
    ttl_seconds: int | None = Field(
        None,
        ge=60,
        le=MAX_TTL_SECONDS,
        strict=True,
        description="Delete the deployment this long after it became ready (or after"
        " creation while it never does), as a DELETE would.",
    )

    @field_validator("hf_model_id")
    @classmethod
    def _repo_id(cls, value: str) -> str:
        if not REPO_ID.match(value) or "--" in value or ".." in value or value.endswith(".git"):
            raise ValueError(
                "must be a Hugging Face repo id like 'owner/name' (letters, digits, '-', '_', '.')"
            )
        return value

    @field_validator("user_runpod_key", "hf_token")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value


class DeploymentAccepted(BaseModel):
    deployment_id: str
    status: str
    model_id: str
    estimated_ready_seconds: int
    webhook_url: str | None
    created_at: str


class LogLine(BaseModel):
    at: str | None
    level: str
    status: str | None
    message: str


class ErrorBody(BaseModel):
    type: str
    message: str


class DeploymentView(BaseModel):
    deployment_id: str
    status: str
    model_id: str
    gpu: str | None
    gpu_tier: str | None = None
    vram_gb: float | None = None
    endpoint_id: str | None
    endpoint_url: str | None
    webhook_url: str | None = None
    max_workers: int = 1
    region: str | None = None
    expires_at: str | None = Field(None, description="When its ttl deletes it, if one was set.")
    delete_reason: Literal["requested", "expired"] | None = None
    logs: list[LogLine]
    error: ErrorBody | None
    created_at: str | None
    updated_at: str | None
    ready_at: str | None


class DeploymentList(BaseModel):
    items: list[DeploymentView]
    next_cursor: str | None


class ErrorEnvelope(BaseModel):
    class Inner(BaseModel):
        type: str
        message: str
        request_id: str | None
        fields: list[dict[str, Any]] | None = None

    error: Inner


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] = Field(..., description="Passed to the worker's handler as `input`.")
    webhook: str | None = Field(
        None, max_length=2048, description="Runpod calls it when the job ends."
    )
    policy: dict[str, Any] | None = Field(
        None, description="Runpod job policy: `executionTimeout` (ms), `lowPriority`, `ttl`."
    )


class WorkerCallback(BaseModel):
    """What the worker image POSTs to `VISGATE_WEBHOOK` (README, "The worker callback")."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["downloading_model", "loading_model", "ready", "failed"]
    models_loaded: list[str] = Field(default_factory=list, max_length=64)
    vram_allocated_gb: float | None = Field(None, ge=0, le=10_000)
    gpu: str | None = Field(None, max_length=200)
    error: str | None = Field(None, max_length=4000)
    message: str | None = Field(None, max_length=1000)


class DeploymentCost(BaseModel):
    deployment_id: str
    currency: Literal["USD"] = "USD"
    price_per_hour: float | None = Field(
        description="What the workers running now cost per hour (unit price x workers);"
        " null when the serving pool has no known price."
    )
    workers: int = Field(description="Workers billed now (starting, idle or busy).")
    spend: float = Field(description="What it has cost from `since` to `until`.")
    spend_source: Literal["estimated", "billed"]
    since: str
    until: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "Missing, wrong or revoked API key"},
    404: {"model": ErrorEnvelope, "description": "No such deployment for this key"},
    422: {"model": ErrorEnvelope, "description": "Invalid input"},
    429: {
        "model": ErrorEnvelope,
        "description": "Over the per-key rate limit (with Retry-After), or over a tenant"
        " quota (`QuotaExceededError`, no Retry-After)",
    },
}

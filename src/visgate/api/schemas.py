"""Request and response bodies of the public API (their JSON Schema is the OpenAPI doc)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class TeardownBlockedView(BaseModel):
    """The provider keeps refusing this deployment's teardown: something may still bill."""

    since: str | None
    account: Literal["user", "operator"] = Field(
        description="`user`: the Runpod account of the key given as user_runpod_key."
    )
    left: list[str] = Field(description="What may still exist on that account.")
    error: ErrorBody
    retry_at: str | None = Field(None, description="The next try; DELETE again retries now.")


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
    teardown_blocked: TeardownBlockedView | None = None
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

"""What a caller sends to create a deployment, and what a worker reports back: the inputs the
deployments service takes (FastAPI renders their JSON Schema into the OpenAPI document)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

# The hub's repo id rules (huggingface_hub.utils.validate_repo_id), ASCII only:
# owner/name, letters, digits, '-', '_', '.', at most 96 per part, no '--' or '..',
# no leading/trailing '-' or '.', no '.git' suffix.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


MAX_WORKERS_PER_DEPLOYMENT = 100
MAX_TTL_SECONDS = 30 * 24 * 3600


def _whole(value: object) -> object:
    """JSON has one number type and the schema's `integer` includes `2.0`; a fraction, a
    string or a boolean is still refused (the fields are strict)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = BeforeValidator(_whole)


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
    max_workers: Annotated[int, WholeNumber] = Field(
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
    ttl_seconds: Annotated[int | None, WholeNumber] = Field(
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


class WorkerCallback(BaseModel):
    """What the worker image POSTs to `VISGATE_WEBHOOK` (README, "The worker callback")."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["downloading_model", "loading_model", "ready", "failed"]
    models_loaded: list[str] = Field(default_factory=list, max_length=64)
    vram_allocated_gb: float | None = Field(None, ge=0, le=10_000)
    gpu: str | None = Field(None, max_length=200)
    error: str | None = Field(None, max_length=4000)
    message: str | None = Field(None, max_length=1000)

"""The service's other records: API keys, idempotency entries, webhook deliveries."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from pydantic import BaseModel, Field

API_KEY_PREFIX = "vg_"


def hash_api_key(api_key: str) -> str:
    """Keys are 256-bit random, so a plain SHA-256 is a safe one-way index (no salt needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(BaseModel):
    id: str  # sha256 of the key: lookups are one get by id
    name: str
    tenant: str
    created_at: float
    revoked_at: float | None = None
    webhook_secret_ref: str | None = None
    # Tenant quotas for requests made with this key; None: the operator's defaults.
    max_deployments: int | None = None
    max_workers: int | None = None
    version: int = 0

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ConsoleSession(BaseModel):
    """A web console sign-in. Its id is the SHA-256 of the cookie's token, so the store never
    holds what the browser presents; it names the API key it was opened with, and ends at
    `expires_at`, at sign-out, or when that key is revoked."""

    id: str
    key_id: str
    tenant: str
    created_at: float
    expires_at: float
    version: int = 0


class IdempotencyRecord(BaseModel):
    """One (tenant, Idempotency-Key): claimed by the request running it, then its answer.

    The claim names the deployment id chosen for the key and carries a token of the request
    holding it: only that request may write the record, answer or give the key back."""

    id: str  # hash of (tenant, key)
    tenant: str
    fingerprint: str
    state: str = "in_flight"  # in_flight | done
    status_code: int | None = None
    response: dict[str, Any] | None = None
    created_at: float
    expires_at: float  # when the record may be purged and the key used afresh
    # In flight: the claim's lease end, renewed while its request runs (None: `expires_at`,
    # as records written before leases were renewed).
    lease_until: float | None = None
    token: str | None = None  # the claiming request's
    deployment_id: str | None = None  # the deployment this key creates
    version: int = 0

    @property
    def claim_ends(self) -> float:
        return self.expires_at if self.lease_until is None else self.lease_until


class DeliveryAttemptLog(BaseModel):
    at: float
    status_code: int | None = None
    ok: bool = False
    duration_ms: float | None = None
    error: str | None = None
    response_excerpt: str | None = None


class WebhookDelivery(BaseModel):
    """One event to one user webhook. Pending deliveries are records, so a restart resumes them."""

    id: str  # the webhook-id, stable across retries
    deployment_id: str
    tenant: str
    key_id: str | None  # whose webhook secret signs it
    event_type: str
    url: str
    body: str  # exact bytes that are signed, as text
    state: str = "pending"  # pending | delivered | failed
    attempts: list[DeliveryAttemptLog] = Field(default_factory=list)
    created_at: float
    due_at: float | None = None
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    version: int = 0

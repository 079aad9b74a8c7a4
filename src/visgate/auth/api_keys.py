"""API key lifecycle (used by `visgate keys ...`): issue, list, revoke.

A key is shown once; the store keeps its SHA-256 only. Its webhook signing secret is kept
in the secret store, since signing needs the secret itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from visgate.domain.errors import ValidationError
from visgate.domain.records import ApiKey, hash_api_key, new_api_key
from visgate.services import Services
from visgate.store.quotas import Limits
from visgate.webhooks.signing import generate_secret


@dataclass(frozen=True)
class IssuedKey:
    name: str
    tenant: str
    api_key: str
    webhook_secret: str


def _secret_owner(key_id: str) -> str:
    return f"key_{key_id[:16]}"


async def issue_key(
    services: Services,
    name: str,
    tenant: str | None = None,
    *,
    max_deployments: int | None = None,
    max_workers: int | None = None,
) -> IssuedKey:
    """`max_deployments` / `max_workers` override the operator's tenant quotas for requests
    made with this key (at least 1: a tenant that must not deploy has its key revoked).
    `ConflictError` when another key has the name."""
    for label, value in (("max_deployments", max_deployments), ("max_workers", max_workers)):
        if value is not None and value < 1:
            raise ValidationError(
                f"{label} must be at least 1", [{"field": label, "message": "must be >= 1"}]
            )

    api_key = new_api_key()
    key_id = hash_api_key(api_key)
    webhook_secret = generate_secret()
    ref = await services.secrets.put(_secret_owner(key_id), "webhook_secret", webhook_secret)
    try:
        await services.store.api_keys.add(
            ApiKey(
                id=key_id,
                name=name,
                tenant=tenant or name,
                created_at=time.time(),
                webhook_secret_ref=ref,
                max_deployments=max_deployments,
                max_workers=max_workers,
            )
        )
    except BaseException:
        await services.secrets.delete_for(_secret_owner(key_id))
        raise
    return IssuedKey(
        name=name, tenant=tenant or name, api_key=api_key, webhook_secret=webhook_secret
    )


def tenant_limits(services: Services, key: ApiKey) -> Limits:
    """The quotas that apply to requests made with `key`."""
    settings = services.settings
    return Limits(
        max_deployments=key.max_deployments or settings.tenant_max_deployments,
        max_workers=key.max_workers or settings.tenant_max_workers,
    )


async def revoke_key(services: Services, name: str) -> ApiKey | None:
    return await services.store.api_keys.revoke(name)

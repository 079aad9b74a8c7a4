"""Orphan sweeper: provider endpoints named `visgate-*` that no live record owns are deleted.

Catches what a crash between "created" and "recorded", a teardown that raced a creation, or
a stale step (orchestrator/fencing.py) could leave behind: an endpoint whose record is
deleted or failed and cleaned, and a duplicate beside the endpoint a live record names.
`sweep_accounts` lists every Runpod account in play: the operator's, and each one a
deployment brought (`user_runpod_key`) whose key is still held, live or deleted within its
final-sweep wait; the user's own key is deleted only after that final sweep.

Two levels of certainty: an endpoint whose record here is deleted, or failed and cleaned,
is surely ours and surely dead. One with no record at all may belong to another install
sharing the Runpod account (a laptop on SQLite beside production), so only the operator's
explicit `visgate sweep` deletes those; the periodic sweep just logs them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from visgate.deployments.service import secret
from visgate.domain.deployment import Deployment
from visgate.domain.errors import DeploymentNotFoundError, SecretNotFoundError
from visgate.domain.status import HOLDS_RESOURCES, Status
from visgate.logging import get_logger
from visgate.providers.base import GpuProvider
from visgate.services import Services
from visgate.store.base import DEPLOYMENTS
from visgate.store.cursors import every
from visgate.store.repositories import Store

log = get_logger(__name__)

PREFIX = "visgate-"
NO_RECORD = "no record"


@dataclass(frozen=True, slots=True)
class Orphan:
    endpoint_id: str
    name: str
    reason: str
    duplicate: bool = False  # only this endpoint goes; the record's own and the template stay


async def find_orphans(
    store: Store, provider: GpuProvider, *, api_key: str, delete_unknown: bool = True
) -> list[Orphan]:
    """Endpoints to delete; record-less ones only with `delete_unknown` (else logged)."""
    orphans = []
    for endpoint in await provider.list_endpoints(api_key=api_key):
        if not endpoint.name.startswith(PREFIX):
            continue
        deployment_id = endpoint.name.removeprefix(PREFIX)
        try:
            dep = await store.deployments.get(deployment_id)
        except DeploymentNotFoundError:
            if delete_unknown:
                orphans.append(Orphan(endpoint.endpoint_id, endpoint.name, NO_RECORD))
            else:
                log.info(
                    "sweep_unknown_endpoint", name=endpoint.name, endpoint_id=endpoint.endpoint_id
                )
            continue
        if dep.status is Status.deleted or (dep.status is Status.failed and not dep.needs_teardown):
            orphans.append(
                Orphan(endpoint.endpoint_id, endpoint.name, f"record is {dep.status.value}")
            )
        elif _settled_elsewhere(dep, endpoint.endpoint_id):
            reason = f"duplicate of {dep.endpoint_id}"
            orphans.append(Orphan(endpoint.endpoint_id, endpoint.name, reason, duplicate=True))
    return orphans


def _settled_elsewhere(dep: Deployment, endpoint_id: str) -> bool:
    """The record names another endpoint and is past its create step (which may still be
    adopting what carries its name)."""
    return (
        dep.status in HOLDS_RESOURCES
        and dep.status is not Status.creating_endpoint
        and dep.endpoint_id is not None
        and dep.endpoint_id != endpoint_id
    )


async def sweep(
    store: Store,
    provider: GpuProvider,
    *,
    api_key: str,
    dry_run: bool = False,
    delete_unknown: bool = True,
) -> list[Orphan]:
    """Delete (or with `dry_run`, list) orphans. The periodic runner passes
    `delete_unknown=False`; the operator's `visgate sweep` keeps the default."""
    orphans = await find_orphans(store, provider, api_key=api_key, delete_unknown=delete_unknown)
    for orphan in orphans:
        log.info("orphan_endpoint", name=orphan.name, reason=orphan.reason, dry_run=dry_run)
        if not dry_run:
            only = orphan.endpoint_id if orphan.duplicate else None
            await provider.teardown(orphan.name, api_key=api_key, endpoint_id=only)
    return orphans


async def accounts(services: Services) -> dict[str, str]:
    """The Runpod keys to sweep with, by a short fingerprint (never the key): the
    operator's (or "" for a provider that takes none), and every key a deployment brought
    that is still held (a deployment's own key outlives its teardown until the final
    sweep, so an account is swept while anything of its deployments may be left)."""
    found: dict[str, str] = {}
    settings = services.settings
    if settings.runpod_api_key is not None:
        found[OPERATOR] = settings.runpod_api_key.get_secret_value()
    elif services.provider is not None and not services.provider.needs_api_key:
        found[OPERATOR] = ""
    for status in Status:
        async for doc in every(
            services.store.deployments.backend, DEPLOYMENTS, {"status": status.value}
        ):
            dep = Deployment.from_doc(doc)
            if "runpod_api_key" not in dep.secret_refs or not _key_may_be_held(dep):
                continue
            try:
                key = await secret(services, dep, "runpod_api_key")
            except SecretNotFoundError:
                continue
            if key:
                found.setdefault(_fingerprint(key), key)
    return found


OPERATOR = "operator"


def _key_may_be_held(dep: Deployment) -> bool:
    if dep.status in (Status.deleted, Status.failed):
        return dep.needs_teardown or dep.final_sweep_at is not None
    return True


def _fingerprint(key: str) -> str:
    return "user:" + hashlib.sha256(key.encode()).hexdigest()[:12]


async def sweep_accounts(
    services: Services, *, dry_run: bool = False, delete_unknown: bool = False
) -> list[Orphan]:
    """Sweep every account in play. Endpoints with no record are deleted (with
    `delete_unknown`) only on the operator's account: a user's account may hold other
    installs' endpoints, and this one has no say there."""
    provider = services.provider
    if provider is None:
        return []
    orphans: list[Orphan] = []
    for account, key in (await accounts(services)).items():
        unknown = delete_unknown and account == OPERATOR
        found = await sweep(
            services.store, provider, api_key=key, dry_run=dry_run, delete_unknown=unknown
        )
        orphans += found
        if found:
            log.info("sweep_account", account=account, orphans=len(found))
    return orphans

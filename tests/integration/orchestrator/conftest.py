"""The reconciler's steps against the real SQLite store, the local secret store, the Runpod
provider on the fake Runpod (loopback) and the fake hub. A test places a record in the
status it is about, runs the loop's passes by hand, and reads the record back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.hub import FakeHub, run_fake_hub
from tests.fakes.runpod import API_KEY, RunningFakeRunpod, run_fake_runpod
from tests.support.receivers import WebhookReceiver, webhook_receiver
from tests.support.stack import fake_cloud_env
from visgate.auth.api_keys import IssuedKey, issue_key
from visgate.deployments.callback import apply_worker_callback
from visgate.deployments.schemas import WorkerCallback
from visgate.deployments.service import queue_pending_events
from visgate.domain.deployment import Deployment, StatusEvent
from visgate.domain.records import hash_api_key
from visgate.domain.status import Status
from visgate.hub import HubValidator
from visgate.orchestrator.reconciler import Reconciler
from visgate.providers.base import EndpointRef, EndpointSpec, Fence, GpuProvider, endpoint_name
from visgate.providers.runpod import RunpodProvider, RunpodRestProvider
from visgate.services import Services, build_services
from visgate.settings import load_settings
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend

TENANT = "team"
USER_KEY = "rp_user_owned_9c8b7a6d5e4f"  # a deployment's own Runpod key (another account)


@pytest.fixture(scope="module")
def runpod_server() -> Iterator[RunningFakeRunpod]:
    with run_fake_runpod() as running:
        yield running


@pytest.fixture(scope="module")
def hub_server() -> Iterator[FakeHub]:
    with run_fake_hub() as hub:
        yield hub


@pytest.fixture
def runpod(runpod_server: RunningFakeRunpod) -> RunningFakeRunpod:
    runpod_server.state.reset()
    runpod_server.state.worker_quota = 1000
    runpod_server.state.api_keys.add(USER_KEY)
    return runpod_server


@dataclass
class Plane:
    """The control plane without HTTP: services, one reconciler, and record helpers."""

    services: Services
    runpod: RunningFakeRunpod
    hub: FakeHub
    reconciler: Reconciler

    @property
    def store(self) -> Store:
        return self.services.store

    async def place(
        self,
        status: Status,
        *,
        since: float | None = None,
        secrets: dict[str, str] | None = None,
        model_id: str = "stabilityai/sdxl-turbo",
        **fields: Any,
    ) -> Deployment:
        """A record in `status`, as if it had walked there; entered it at `since`."""
        now = time.time()
        dep = Deployment.new(tenant=TENANT, model_id=model_id, now=now)
        for name, value in (secrets or {}).items():
            dep.secret_refs[name] = await self.services.secrets.put(dep.id, name, value)
        at = since if since is not None else now
        path = _path_to(status)
        dep.history = [StatusEvent(seq=i + 1, status=s, at=at) for i, s in enumerate(path)]
        dep.status, dep.status_since = status, at
        for name, value in fields.items():
            setattr(dep, name, value)
        return await self.store.deployments.create(dep)

    async def ready_with_webhook(
        self, issued: IssuedKey, url: str, *, tenant: str = TENANT
    ) -> Deployment:
        """A ready deployment of `tenant` whose `deployment.ready` webhook to `url` is queued."""
        dep = await self.place(
            Status.ready,
            key_id=hash_api_key(issued.api_key),
            user_webhook_url=url,
            endpoint_id="e1",
            due_at=None,
            tenant=tenant,
        )
        dep.pending_events = ["deployment.ready"]
        await queue_pending_events(self.services, dep)
        return dep

    async def endpoint_for(self, dep: Deployment, key: str = API_KEY) -> EndpointRef:
        """Make the deployment's endpoint on the fake, as an earlier step would have."""
        assert self.services.provider is not None
        spec = EndpointSpec(
            name=endpoint_name(dep.id), image="registry.example/w:1", env={}, gpu_pools=["ADA_24"]
        )
        return await self.services.provider.ensure_endpoint(spec, api_key=key)

    async def run(self) -> int:
        """One pass of the loop over what is due now, waiting for its steps."""
        claimed = await self.reconciler.run_once()
        await self.reconciler.drain()
        return claimed

    async def settle(self, dep_id: str, passes: int = 20) -> Deployment:
        """Run passes while the record is due."""
        for _ in range(passes):
            dep = await self.store.deployments.get(dep_id)
            if dep.due_at is None or dep.due_at > time.time():
                return dep
            await self.run()
        return await self.store.deployments.get(dep_id)

    async def after_final_sweep(self, dep_id: str) -> Deployment:
        """Skip the two leases a teardown waits before its final sweep, and run it."""

        def now_due(d: Deployment) -> None:
            if d.final_sweep_at is not None:
                d.final_sweep_at = d.due_at = time.time()

        await self.store.deployments.mutate(dep_id, now_due)
        return await self.settle(dep_id)

    async def make_due(self, dep_id: str) -> None:
        """Skip the wait: the record comes due now (as if its backoff had passed)."""

        def due(d: Deployment) -> None:
            d.due_at = time.time()

        await self.store.deployments.mutate(dep_id, due)

    def endpoint(self, dep: Deployment) -> dict[str, Any] | None:
        return self.runpod.state.endpoint(endpoint_name(dep.id))


class CallbacksDuringCreate:
    """The provider, but the new endpoint's worker reports `bodies` at once: its callbacks
    are written before the create step's own result."""

    def __init__(self, inner: GpuProvider, plane: Plane, *bodies: WorkerCallback) -> None:
        self.inner, self.plane, self.bodies = inner, plane, bodies

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def ensure_endpoint(
        self, spec: EndpointSpec, *, api_key: str, fresh: bool = False, fence: Fence | None = None
    ) -> EndpointRef:
        ref = await self.inner.ensure_endpoint(spec, api_key=api_key, fresh=fresh, fence=fence)
        dep_id = spec.name.removeprefix("visgate-")
        for body in self.bodies:
            await self.plane.store.deployments.mutate(
                dep_id, lambda d, b=body: apply_worker_callback(d, b, time.time())
            )
        return ref


def _path_to(status: Status) -> list[Status]:
    walk = [
        Status.validating,
        Status.selecting_gpu,
        Status.creating_endpoint,
        Status.loading_model,
        Status.ready,
    ]
    if status in walk:
        return walk[: walk.index(status) + 1]
    if status is Status.downloading_model:
        return [*walk[:3], Status.downloading_model]
    if status is Status.failed:
        return [*walk[:4], Status.failed]
    return [*walk, status]  # deleting / deleted / webhook_failed from ready


def plane_settings(tmp_path: Path, runpod: RunningFakeRunpod, hub: FakeHub, **env: Any) -> Any:
    values: dict[str, Any] = {
        "VISGATE_DB_PATH": str(tmp_path / "visgate.db"),
        "VISGATE_SECRET_KEY": None,
        **fake_cloud_env(runpod, hub),
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "INTERNAL_WEBHOOK_SECRET": "unit-internal-secret-0123456789abcdef",
        "WEBHOOK_ALLOW_PRIVATE_URLS": True,
        "WEBHOOK_RETRY_SCHEDULE": "0.2,0.2",
        "VISGATE_HEALTH_POLL_SECONDS": 0.05,
        "VISGATE_LEASE_SECONDS": 5,
        # Tests of other features make many deployments per tenant; quota tests set theirs.
        "TENANT_MAX_DEPLOYMENTS": 100_000,
        "TENANT_MAX_WORKERS": 100_000,
        **env,
    }
    return load_settings(**values)


@pytest.fixture
async def make_plane(
    tmp_path: Path, runpod: RunningFakeRunpod, hub_server: FakeHub
) -> AsyncIterator[Any]:
    made: list[Services] = []
    hub_server.state.reset()

    async def make(*, store: Store | None = None, **env: Any) -> Plane:
        settings = plane_settings(tmp_path, runpod, hub_server, **env)
        fast = {"timeout": 5.0, "retry_attempts": 2, "max_retry_wait": 0.02}
        provider: GpuProvider
        if str(env.get("RUNPOD_API", "graphql")) == "rest":
            provider = RunpodRestProvider(runpod.rest_url, runpod.api_base, **fast)
        else:
            provider = RunpodProvider(runpod.graphql_url, runpod.api_base, **fast)
        hub = HubValidator(hub_server.url, max_retry_wait=0.02, timeout_s=2.0)
        services = build_services(
            settings,
            store=store or Store(SqliteBackend(settings.db_path)),
            provider=provider,
            hub=hub,
        )
        made.append(services)
        return Plane(services, runpod, hub_server, Reconciler(services, owner="unit"))

    yield make
    for services in made:
        await services.aclose()


@pytest.fixture
async def plane(make_plane: Any) -> Plane:
    return await make_plane()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def issued(plane: Plane) -> IssuedKey:
    return await issue_key(plane.services, "team")

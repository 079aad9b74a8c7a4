"""The whole control plane against wire-level fakes: `visgate serve` (or `visgate worker`)
processes on SQLite or the Firestore emulator, a fake Hugging Face hub, a fake Runpod whose
"workers" call back like the real image, and a webhook receiver.

Services run as real subprocesses so tests can SIGKILL them mid-step, start several at
once, and read only what a user can read: the HTTP API, webhooks and the fakes' state.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.hub import FakeHub, run_fake_hub
from tests.fakes.runpod import RunningFakeRunpod, run_fake_runpod
from tests.fakes.runpod_state import API_KEY
from tests.support.firestore_emulator import PROJECT, free_port
from tests.support.receivers import FakeWorker, WebhookReceiver, webhook_receiver

VISGATE = [sys.executable, "-m", "visgate"]
SETTLED = {"ready", "failed", "deleted", "webhook_failed"}


@dataclass
class Service:
    """One `visgate serve`/`worker` process; `url` is empty for a worker."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, leases stay held until they expire."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        """SIGSTOP the process group: a frozen VM. Nothing runs, no lease is renewed, and
        answers pile up unread in its sockets until `resume()`."""
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`: it goes on where it stopped. Harmless if not paused."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    tmp: Path
    hub: FakeHub
    runpod: RunningFakeRunpod
    receiver: WebhookReceiver
    worker: FakeWorker
    env: dict[str, str]
    port: int
    key: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VISGATE, *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def create_key(self, name: str = "team") -> dict[str, str]:
        done = self.cli("keys", "create", "--name", name, "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def start(self, command: str = "serve", port: int | None = None, **env: str) -> Service:
        """Start a process; `serve` listens on the stack's port (the callback URL's)."""
        n = len(self.services)
        args = [*VISGATE, command]
        url = ""
        if command == "serve":
            port = port or self.port
            args += ["--host", "127.0.0.1", "--port", str(port)]
            url = f"http://127.0.0.1:{port}"
        log_path = self.tmp / f"{command}-{n}.log"
        proc = subprocess.Popen(
            args,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
            start_new_session=True,
        )
        service = Service(proc, url, log_path)
        self.services.append(service)
        if url:
            self._wait_healthy(service)
        return service

    def _wait_healthy(self, service: Service) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if service.proc.poll() is not None:
                raise RuntimeError(f"service exited:\n{service.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{service.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"service never became healthy:\n{service.log_text()[-3000:]}")

    # --- the user's view ------------------------------------------------------------

    def client(self, base_url: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=base_url or self.url,
            headers={"Authorization": f"Bearer {self.key['api_key']}"},
            timeout=30,
        )

    def deploy(
        self, client: httpx.Client, model: str = "stabilityai/sdxl-turbo", **body: Any
    ) -> str:
        body = {
            "hf_model_id": model,
            "user_webhook_url": self.receiver.url,
            "user_runpod_key": API_KEY,
            **body,
        }
        resp = client.post("/v1/deployments", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["deployment_id"])

    def wait_for(
        self,
        client: httpx.Client,
        deployment_id: str,
        statuses: set[str] = SETTLED,
        timeout: float = 60,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                resp = client.get(f"/v1/deployments/{deployment_id}")
                if resp.status_code == 200:
                    last = resp.json()
                    if last["status"] in statuses:
                        return last
            time.sleep(0.1)
        raise AssertionError(f"{deployment_id} never reached {statuses}; last: {last}")

    def wait_all(
        self, client: httpx.Client, ids: list[str], statuses: set[str], timeout: float = 120
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        done: dict[str, dict[str, Any]] = {}
        for dep_id in ids:
            done[dep_id] = self.wait_for(
                client, dep_id, statuses, max(1.0, deadline - time.monotonic())
            )
        return done

    def assert_ready_webhooks(
        self, ids: list[str], timeout: float = 30, *, crashes: bool = False
    ) -> None:
        """Every deployment's `deployment.ready` webhook was accepted (2xx), under one
        stable id, exactly once: only a failed try is sent again. With `crashes` (a
        service was SIGKILLed between the receiver's answer and the write that records
        it) a redelivery is allowed: at least once."""
        key = "{}:deployment.ready".format

        def accepted(dep_id: str) -> list[Any]:
            return [d for d in self.receiver.by_event().get(key(dep_id), []) if d.ok]

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(accepted(i) for i in ids):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # past the test schedule's retries: a duplicate would show by now
        got = self.receiver.by_event()
        for dep_id in ids:
            deliveries = got.get(key(dep_id), [])
            assert deliveries, f"no ready webhook for {dep_id}"
            assert len({d.headers["webhook-id"] for d in deliveries}) == 1, dep_id
            ok = sum(d.ok for d in deliveries)
            assert ok >= 1 if crashes else ok == 1, (dep_id, [d.status for d in deliveries])

    def assert_one_endpoint_per_live_deployment(self, final: dict[str, dict[str, Any]]) -> None:
        """Ready deployments hold exactly one endpoint; the others none; none was made twice."""
        state = self.runpod.state
        made = Counter(state.created_names("endpoint"))
        assert not {n: c for n, c in made.items() if c > 1}, "an endpoint was created twice"
        live = Counter(row["name"] for row in state.endpoints.values())
        for dep_id, dep in final.items():
            expected = 1 if dep["status"] == "ready" else 0
            assert live[f"visgate-{dep_id}"] == expected, (dep_id, dep["status"])
        assert sum(live.values()) == sum(d["status"] == "ready" for d in final.values())

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()


def emulator_host_for(store: str, request: Any) -> str | None:
    """The Firestore emulator's address when `store` is firestore (starting it), else None."""
    if store != "firestore":
        return None
    return str(request.getfixturevalue("firestore_emulator").host)


def fake_cloud_env(runpod: RunningFakeRunpod, hub: FakeHub) -> dict[str, str]:
    """The settings that point a control plane at the fake Runpod and the fake hub."""
    return {
        "PROVIDER": "runpod",
        "RUNPOD_GRAPHQL_URL": runpod.graphql_url,
        "RUNPOD_REST_URL": runpod.rest_url,
        "RUNPOD_API_BASE": runpod.api_base,
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_TEMPLATE_IMAGE": "registry.example/visgate-worker:test",
        "HF_ENDPOINT": hub.url,
    }


def stack_env(
    tmp: Path,
    hub: FakeHub,
    runpod: RunningFakeRunpod,
    port: int,
    *,
    store: str = "sqlite",
    emulator_host: str | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        **os.environ,
        **fake_cloud_env(runpod, hub),
        "HF_HUB_OFFLINE": "false",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "INTERNAL_WEBHOOK_SECRET": "stack-internal-secret-0123456789abcdef",
        "VISGATE_SECRET_KEY": "",
        "VISGATE_DB_PATH": str(tmp / "data" / "visgate.db"),
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_RETRY_SCHEDULE": "0.2,0.4,0.8",
        "VISGATE_POLL_INTERVAL": "0.2",
        "VISGATE_HEALTH_POLL_SECONDS": "0.3",
        "VISGATE_LEASE_SECONDS": "3",
        # A killed instance's deliveries come back within the e2e tests' waits (not 60 s).
        "VISGATE_DELIVERY_LEASE_SECONDS": "20",
        "VISGATE_SWEEP_INTERVAL": "3600",
        "RATE_LIMIT_PER_MINUTE": "100000",
        # Tests of other features make many deployments per tenant; quota tests set theirs.
        "TENANT_MAX_DEPLOYMENTS": "100000",
        "TENANT_MAX_WORKERS": "100000",
        "LOG_LEVEL": "info",
        "STORE": store,
    }
    if store == "firestore":
        assert emulator_host is not None
        env |= {
            "FIRESTORE_EMULATOR_HOST": emulator_host,
            "GCP_PROJECT_ID": PROJECT,
            "FIRESTORE_COLLECTION_PREFIX": f"t{os.getpid()}_{free_port()}_",
        }
    return env | extra


@contextlib.contextmanager
def run_stack(
    tmp: Path,
    *,
    store: str = "sqlite",
    emulator_host: str | None = None,
    worker: FakeWorker | None = None,
    **extra: str,
) -> Iterator[Stack]:
    """Fakes up, a key issued; start services with `stack.start()`."""
    worker = worker or FakeWorker()
    with run_fake_hub() as hub, run_fake_runpod() as runpod, webhook_receiver() as receiver:
        runpod.state.worker_quota = 100_000  # a big account: quota is tested on its own
        runpod.state.on_endpoint_created = lambda view: worker.on_endpoint_created(
            {e["key"]: e["value"] for e in view["env"]}
        )
        port = free_port()
        env = stack_env(tmp, hub, runpod, port, store=store, emulator_host=emulator_host, **extra)
        stack = Stack(tmp, hub, runpod, receiver, worker, env, port)
        stack.key = stack.create_key()
        try:
            yield stack
        finally:
            stack.stop_all()

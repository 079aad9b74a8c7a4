"""Small loopback servers for end-to-end tests: a webhook receiver that records deliveries
(and can fail on purpose), and a fake worker that calls the control plane back."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.servers import serve_in_thread


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 204  # what the receiver answered

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class WebhookReceiver:
    """Records every request. Answers 204, or 500 to the first `fail_first` requests, or
    what the URL asks for: `?status=410` (always), plus `&retry_after=2` for a header."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url_answering(self, status: int, retry_after: float | None = None) -> str:
        """A webhook URL on this receiver that always answers `status`."""
        query = f"status={status}" + (f"&retry_after={retry_after:g}" if retry_after else "")
        return f"{self.url}?{query}"

    def by_event(self) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        with self.lock:
            for d in self.deliveries:
                payload = json.loads(d.body)
                key = f"{payload['data']['deployment_id']}:{payload['type']}"
                out.setdefault(key, []).append(d)
        return out


@contextlib.contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=fail_first)

    async def hook(request: Request) -> Response:
        body = await request.body()
        status, headers = 204, {}
        if "status" in request.query_params:
            status = int(request.query_params["status"])
            if "retry_after" in request.query_params:
                headers["Retry-After"] = request.query_params["retry_after"]
        with receiver.lock:
            if receiver.fail_first > 0 and "status" not in request.query_params:
                receiver.fail_first -= 1
                status = 500
            receiver.deliveries.append(Delivery(dict(request.headers), body, time.time(), status))
        return Response(status_code=status, headers=headers)

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        receiver.url = f"{url}/hook"
        yield receiver


class FakeWorker:
    """Plays the worker image: when an endpoint appears, POST progress then `ready` to the
    callback URL in its env, retrying until the control plane answers (it may be down)."""

    def __init__(
        self,
        *,
        delay: float | tuple[float, float] = 0.05,
        report: str = "ready",
        retry_for: float = 120.0,
        seed: int = 0,
    ) -> None:
        self.delay = delay  # seconds after the endpoint appears; a (low, high) pair draws one
        self._rng = random.Random(seed)
        self.report = report
        self.retry_for = retry_for
        self.reported: set[str] = set()
        self.ready_at: dict[str, float] = {}  # deployment id -> when the accepted `ready` was sent
        self._lock = threading.Lock()
        # One client for every thread: building one (and its TLS context) per endpoint
        # costs more CPU than the control plane spends on the deployment.
        self._client = httpx.Client(timeout=5, limits=httpx.Limits(max_connections=64))

    def on_endpoint_created(self, env: dict[str, str]) -> None:
        if "VISGATE_WEBHOOK" not in env:
            return  # not made by the control plane (e.g. a test's orphan): nobody to call
        threading.Thread(target=self._run, args=(dict(env),), daemon=True).start()

    def _run(self, env: dict[str, str]) -> None:
        delay = self.delay
        if isinstance(delay, tuple):
            with self._lock:
                delay = self._rng.uniform(*delay)
        time.sleep(delay)
        url, token = env["VISGATE_WEBHOOK"], env["VISGATE_CALLBACK_TOKEN"]
        headers = {"Authorization": f"Bearer {token}"}
        if self.report == "ready":
            bodies: list[dict[str, Any]] = [
                {"status": "loading_model"},
                {
                    "status": "ready",
                    "models_loaded": ["sdxl-turbo"],
                    "vram_allocated_gb": 7.5,
                    "gpu": "NVIDIA L4",
                },
            ]
        elif self.report == "failed":
            bodies = [{"status": "failed", "error": "CUDA out of memory while loading"}]
        else:
            return  # "silent": never calls back
        deadline = time.monotonic() + self.retry_for
        dep_id = url.rsplit("/", 1)[-1]
        for body in bodies:
            while time.monotonic() < deadline:
                sent_at = time.time()
                with contextlib.suppress(httpx.HTTPError):
                    if self._client.post(url, json=body, headers=headers).status_code < 500:
                        break
                time.sleep(0.2)
            if body["status"] == "ready":
                with self._lock:
                    self.ready_at[dep_id] = sent_at
        with self._lock:
            self.reported.add(dep_id)

"""`LocalProvider`: endpoints are local worker processes, remembered in a JSON file.

The file (`<data dir>/local-endpoints.json`) maps endpoint names to process ids and ports,
so a restarted control plane finds the workers it started (the same find-by-name rule as
Runpod), and `teardown` stops them by process group.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from visgate.domain.errors import RunpodAPIError, RunpodUnavailableError
from visgate.providers.base import (
    EndpointHealth,
    EndpointRef,
    EndpointSpec,
    GpuType,
    ProviderEndpoint,
    WorkerCounts,
)
from visgate.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalProvider:
    def __init__(self, settings: Settings, *, worker_dir: Path | None = None) -> None:
        self.data_dir = Path(settings.data_dir)
        self.state_path = self.data_dir / "local-endpoints.json"
        self.worker_dir = worker_dir or Path(
            os.environ.get("VISGATE_WORKER_DIR", REPO_ROOT / "inference")
        )
        self.model_cache = Path(os.environ.get("MODEL_CACHE_DIR", self.data_dir / "models"))
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=330.0))

    # --- state file ------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.state_path.exists():
            return {}
        try:
            data: dict[str, dict[str, Any]] = json.loads(self.state_path.read_text())
        except ValueError:
            return {}
        return {name: e for name, e in data.items() if _alive(int(e["pid"]))}

    def _save(self, endpoints: dict[str, dict[str, Any]]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(endpoints, indent=1))
        tmp.replace(self.state_path)

    def _ref(self, name: str, entry: dict[str, Any]) -> EndpointRef:
        return EndpointRef(
            endpoint_id=entry["endpoint_id"],
            template_id=entry["template_id"],
            name=name,
            url=f"http://127.0.0.1:{entry['port']}",
            gpu_pools=list(entry.get("gpu_pools", [])),
        )

    def _by_id(self, endpoint_id: str) -> dict[str, Any]:
        for entry in self._load().values():
            if entry["endpoint_id"] == endpoint_id:
                return entry
        raise RunpodAPIError(f"local endpoint {endpoint_id} is not running")

    # --- GpuProvider -----------------------------------------------------------------

    async def ensure_endpoint(self, spec: EndpointSpec, *, api_key: str) -> EndpointRef:
        async with self._lock:
            endpoints = self._load()
            if spec.name in endpoints:
                return self._ref(spec.name, endpoints[spec.name])
            port = _free_port()
            env = {
                **os.environ,
                **spec.env,
                "MODEL_CACHE_DIR": str(self.model_cache),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(self.worker_dir), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
            log_path = self.data_dir / "workers" / f"{spec.name}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log_file:
                # Popen returns at once, and the worker must outlive this event loop
                # (asyncio subprocesses are tied to it).
                proc = subprocess.Popen(  # noqa: S603, ASYNC220
                    [sys.executable, "-m", "visgate.providers.local.adapter", "--port", str(port)],
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            suffix = secrets.token_hex(4)
            endpoints[spec.name] = {
                "endpoint_id": f"local-{suffix}",
                "template_id": f"local-tpl-{suffix}",
                "pid": proc.pid,
                "port": port,
                "gpu_pools": list(spec.gpu_pools[:3]),
            }
            self._save(endpoints)
            return self._ref(spec.name, endpoints[spec.name])

    async def find_endpoint(self, name: str, *, api_key: str) -> EndpointRef | None:
        entry = self._load().get(name)
        return self._ref(name, entry) if entry else None

    async def set_gpu_pools(
        self, ref: EndpointRef, spec: EndpointSpec, *, api_key: str
    ) -> EndpointRef:
        async with self._lock:
            endpoints = self._load()
            if ref.name in endpoints:
                endpoints[ref.name]["gpu_pools"] = list(spec.gpu_pools[:3])
                self._save(endpoints)
                return self._ref(ref.name, endpoints[ref.name])
        raise RunpodAPIError(f"local endpoint {ref.name} is not running")

    async def endpoint_health(self, endpoint_id: str, *, api_key: str) -> EndpointHealth:
        body = await self._call("GET", self._by_id(endpoint_id), "/health")
        return EndpointHealth(
            workers=WorkerCounts(**body.get("workers", {})), jobs=body.get("jobs", {})
        )

    async def teardown(self, name: str, *, api_key: str) -> None:
        async with self._lock:
            endpoints = self._load()
            entry = endpoints.pop(name, None)
            if entry is not None:
                try:
                    os.killpg(int(entry["pid"]), signal.SIGTERM)
                except ProcessLookupError:
                    pass
                self._save(endpoints)

    async def list_endpoints(self, *, api_key: str) -> list[ProviderEndpoint]:
        return [
            ProviderEndpoint(
                endpoint_id=e["endpoint_id"],
                name=name,
                template_id=e["template_id"],
                gpu_pools=list(e.get("gpu_pools", [])),
                workers_max=1,
            )
            for name, e in self._load().items()
        ]

    async def gpu_types(self, *, api_key: str) -> list[GpuType]:
        return [GpuType(id="LOCAL_CPU", display_name="local process (CPU)", memory_gb=0.0)]

    async def submit_job(
        self, endpoint_id: str, body: dict[str, Any], *, api_key: str, sync: bool = False
    ) -> dict[str, Any]:
        return await self._call(
            "POST", self._by_id(endpoint_id), "/runsync" if sync else "/run", body
        )

    async def job_status(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self._call("GET", self._by_id(endpoint_id), f"/status/{job_id}")

    async def cancel_job(self, endpoint_id: str, job_id: str, *, api_key: str) -> dict[str, Any]:
        return await self._call("POST", self._by_id(endpoint_id), f"/cancel/{job_id}")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, entry: dict[str, Any], path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url = f"http://127.0.0.1:{entry['port']}{path}"
        try:
            resp = await self._http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise RunpodUnavailableError(
                f"local worker did not answer: {type(exc).__name__}"
            ) from exc
        if resp.status_code >= 400:
            raise RunpodAPIError(f"local worker answered {resp.status_code}: {resp.text[:200]}")
        return resp.json()  # type: ignore[no-any-return]

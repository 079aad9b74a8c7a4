"""`LocalProvider`: endpoints are local worker processes, remembered in a JSON file.

The file (`<data dir>/local-endpoints.json`) maps endpoint names to process ids and ports,
so a restarted control plane finds the workers it started (the same find-by-name rule as
Runpod), and `teardown` stops them by process group. The file outlives reboots while pids
get reused, so an entry also records its process's start time: a pid whose process started
at another time is someone else's, and is neither counted as live nor signalled.

The worker gets the env a Runpod template would give it (the spec's env) on a minimal base,
never this service's own environment: its secrets (`RUNPOD_API_KEY`,
`INTERNAL_WEBHOOK_SECRET`, `VISGATE_SECRET_KEY`, ...) stay here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from visgate.domain.errors import RunpodAPIError, RunpodUnavailableError
from visgate.providers.base import (
    EndpointHealth,
    EndpointRef,
    EndpointSpec,
    Fence,
    GpuType,
    ProviderEndpoint,
    WorkerCounts,
    WorkerLogLine,
)
from visgate.providers.worker_logs import MAX_WORKER_LOG_BYTES, tail_text
from visgate.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[4]
ADAPTER_MODULE = "visgate.providers.local.adapter"

# What a process needs to run Python here, plus the local provider's own knob; everything
# else the worker gets comes from the spec, as on Runpod.
BASE_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "PYTHONPATH",
    "TMPDIR",
    "HF_HUB_OFFLINE",
    "VIRTUAL_ENV",
    "VISGATE_WORKER_MODULE",
)
TERM_GRACE_S = 5.0  # SIGTERM, then this long to exit, then SIGKILL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(spec_env: dict[str, str], *, model_cache: Path, worker_dir: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in BASE_ENV if os.environ.get(name)}
    env.update(spec_env)
    env["MODEL_CACHE_DIR"] = str(model_cache)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(worker_dir), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_started(pid: int) -> str | None:
    """When `pid`'s process started, as an opaque string; None when there is no live process
    (zombies count as gone). Linux: boot id + /proc/<pid>/stat field 22 (start time in clock
    ticks since boot, see proc(5)); elsewhere `ps -o lstart=`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # Linux, and no such process
        return _ps_started(pid)
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces: skip past it
    state, start_ticks = fields[0], fields[19]  # fields 3 and 22 of the line
    if state in ("Z", "X"):
        return None
    return f"{_boot_id()}:{start_ticks}"


def _ps_started(pid: int) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            ["/bin/ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_ours(entry: dict[str, Any]) -> bool:
    """The recorded process still runs: same pid *and* same start time (or, for entries
    written before start times were recorded, an adapter command line on the same port)."""
    pid = int(entry["pid"])
    started = process_started(pid)
    if started is None:
        return False
    if entry.get("started"):
        return bool(started == entry["started"])
    cmdline = _cmdline(pid)
    return ADAPTER_MODULE in cmdline and f"--port {entry['port']}" in cmdline


def _reap(pid: int) -> None:
    """Collect the exit status if it is our child (else it stays a zombie until we exit)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


async def stop_process_group(pid: int, started: str | None, *, grace_s: float) -> None:
    """SIGTERM the group, wait up to `grace_s` for its leader to go, then SIGKILL it.
    (A worker loading models in a thread may not exit on SIGTERM until the load ends.)"""

    def gone() -> bool:
        _reap(pid)
        now = process_started(pid)
        return now is None or (started is not None and now != started)

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if gone():
            return
        await asyncio.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(40):
        if gone():
            return
        await asyncio.sleep(0.05)


class LocalProvider:
    needs_api_key = False  # workers are local processes: no cloud account to sign in to
    default_image = "inference/"  # workers run `inference/` from this checkout, no image pull

    def __init__(
        self,
        settings: Settings,
        *,
        worker_dir: Path | None = None,
        term_grace_s: float = TERM_GRACE_S,
    ) -> None:
        self.data_dir = Path(settings.data_dir)
        self.state_path = self.data_dir / "local-endpoints.json"
        self.worker_dir = worker_dir or Path(
            os.environ.get("VISGATE_WORKER_DIR", REPO_ROOT / "inference")
        )
        self.model_cache = Path(os.environ.get("MODEL_CACHE_DIR", self.data_dir / "models"))
        self.term_grace_s = term_grace_s
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
        return {name: e for name, e in data.items() if _is_ours(e)}

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

    async def ensure_endpoint(
        self,
        spec: EndpointSpec,
        *,
        api_key: str,
        fresh: bool = False,
        fence: Fence | None = None,
    ) -> EndpointRef:
        # `fresh` saves nothing here: the look-up is a read of a local file.
        async with self._lock:
            endpoints = self._load()
            if spec.name in endpoints:
                return self._ref(spec.name, endpoints[spec.name])
            if fence is not None:
                await fence()
            port = _free_port()
            env = worker_env(spec.env, model_cache=self.model_cache, worker_dir=self.worker_dir)
            log_path = self.data_dir / "workers" / f"{spec.name}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log_file:
                # Popen returns at once, and the worker must outlive this event loop
                # (asyncio subprocesses are tied to it).
                proc = subprocess.Popen(  # noqa: S603, ASYNC220
                    [sys.executable, "-m", ADAPTER_MODULE, "--port", str(port)],
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
                "started": process_started(proc.pid),
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

    async def teardown(self, name: str, *, api_key: str, endpoint_id: str | None = None) -> None:
        async with self._lock:
            endpoints = self._load()
            entry = endpoints.get(name)  # only entries that are still ours
            if entry is not None and endpoint_id in (None, entry["endpoint_id"]):
                del endpoints[name]
                await stop_process_group(
                    int(entry["pid"]), entry.get("started"), grace_s=self.term_grace_s
                )
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

    async def endpoint_spend(self, endpoint_id: str, *, api_key: str, since: float) -> float | None:
        """A local worker process costs nothing: no provider bills it, so there is no figure."""
        return None

    async def worker_logs(
        self, endpoint_id: str, *, api_key: str, lines: int
    ) -> list[WorkerLogLine]:
        """The tail of the worker process's output file (it is the only worker)."""
        name = next((n for n, e in self._load().items() if e["endpoint_id"] == endpoint_id), None)
        path = self.data_dir / "workers" / f"{name}.log"
        if name is None or not path.exists():
            return []
        text = await asyncio.to_thread(tail_text, path, MAX_WORKER_LOG_BYTES)
        return [WorkerLogLine(worker_id=endpoint_id, line=t) for t in text.splitlines()[-lines:]]

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

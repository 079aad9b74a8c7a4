"""Shared bits for the bench scripts: start a service subprocess, issue a key, drive load,
measure the bare baselines, and print figures and targets."""

from __future__ import annotations

import asyncio
import json
import operator
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
VISGATE = [sys.executable, "-m", "visgate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def issue_key(env: dict[str, str], name: str = "bench") -> str:
    out = subprocess.run(
        [*VISGATE, "keys", "create", "--name", name, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(out.stdout)["api_key"])


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def uvicorn_args(target: str, port: int) -> list[str]:
    """`python -m uvicorn` on this venv's install, with the flags `visgate serve` passes
    (warning logs, no access log), so a baseline differs from the service only in its app."""
    return [
        *(sys.executable, "-m", "uvicorn", target, "--port", str(port)),
        *("--log-level", "warning", "--no-access-log", "--app-dir", str(Path(__file__).parent)),
    ]


def proc_mb(pid: int, field: str) -> float:
    """A `/proc/<pid>/status` size in MB, e.g. VmRSS (now) or VmHWM (the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`: none means the process itself serves (no uvicorn workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def serving_alone(pid: int) -> None:
    """Says so when `pid` has children: then it is not alone in serving, and its RSS is
    not the server's (`visgate serve` runs uvicorn in-process, with no workers)."""
    if children := child_pids(pid):
        print(f"   note: pid {pid} has children {children}; its RSS leaves theirs out")


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "VISGATE_DB_PATH": str(tmp / "visgate.db"),
        "LOG_LEVEL": "warning",
        **extra,
    }


@dataclass
class Figures:
    name: str
    latencies: list[float]
    errors: int
    elapsed: float

    def pct(self, p: float) -> float:
        """The `p` quantile in ms (nan with no successful request)."""
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def line(self, ref_p99: float | None = None) -> str:
        """One row; with `ref_p99` (a baseline's p99 in ms) the row ends with p99 ÷ it."""
        lat = self.latencies
        if not lat:
            return f"{self.name:<28} no successful requests, {self.errors} errors"
        pct = self.pct
        ratio = f"  p99/bare={pct(0.99) / ref_p99:5.2f}x" if ref_p99 else ""
        return (
            f"{self.name:<28} n={len(lat):>6}  p50={pct(0.50):7.2f} ms  p99={pct(0.99):7.2f} ms"
            f"  p999={pct(0.999):7.2f} ms  mean={statistics.fmean(lat) * 1000:6.2f} ms"
            f"  {self.rate:8.0f} req/s  errors={self.errors}{ratio}"
        )


@dataclass
class Check:
    """A target: `value op limit` passes (e.g. a p99 ratio `<=` 3); no value: not run."""

    name: str
    value: float | None
    op: str  # one of OPS
    limit: float
    unit: str = ""
    digits: int = 2

    def line(self, width: int) -> str:
        target = f"{self.op} {self.limit:,g}{self.unit}"
        if self.value is None:
            return f"{self.name:<{width}}  {'not run':>10}  {target:>9}  -"
        verdict = "PASS" if OPS[self.op](self.value, self.limit) else "MISS"
        shown = f"{self.value:,.{self.digits}f}{self.unit}"
        return f"{self.name:<{width}}  {shown:>10}  {target:>9}  {verdict}"


OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    "==": operator.eq,
}


class Report:
    """Keeps every line's figures and prints each as it comes, ending with p99 ÷ the p99
    of a reference line (a baseline measured earlier; a line may be its own reference)."""

    def __init__(self) -> None:
        self.rows: dict[str, Figures] = {}

    def add(self, key: str, figures: Figures, ref: str | None = None) -> None:
        self.rows[key] = figures
        print(figures.line(self.rows[ref].pct(0.99) if ref in self.rows else None), flush=True)

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.rows.values())

    def p99_ratio(self, key: str, ref: str) -> float | None:
        row = self.rows.get(key)
        return row.pct(0.99) / self.rows[ref].pct(0.99) if row and ref in self.rows else None

    def rate(self, key: str) -> float | None:
        row = self.rows.get(key)
        return row.rate if row else None


def session(url: str, concurrency: int, key: str | None = None) -> aiohttp.ClientSession:
    """One client per measured target: at most `concurrency` connections, kept alive."""
    return aiohttp.ClientSession(
        url,
        connector=aiohttp.TCPConnector(limit=concurrency),
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def get_root(
    url: str, name: str, count: int, concurrency: int, warm_up: int = 200
) -> Figures:
    """`GET /` on a baseline app, after `warm_up` sequential requests."""
    async with session(url, concurrency) as client:

        async def get(i: int) -> int:
            async with client.get("/") as resp:
                return await read_status(resp)

        for i in range(warm_up):
            await get(i)
        return await drive(name, count, concurrency, get)


async def read_status(resp: aiohttp.ClientResponse) -> int:
    """The status, after reading the body (a request is timed until its last byte)."""
    await resp.read()
    return resp.status


async def drive(
    name: str,
    count: int,
    concurrency: int,
    call: Callable[[int], Awaitable[int]],
) -> Figures:
    """Run `call(i)` for i in range(count), `concurrency` at a time; `call` returns the status.

    Callers use aiohttp: at concurrency 50 an httpx client spends ~3x the CPU per request,
    and on 2 cores the driver, not the service, became what was measured.
    """
    latencies: list[float] = []
    errors = 0
    queue = iter(range(count))

    async def worker() -> None:
        nonlocal errors
        for i in queue:
            started = time.perf_counter()
            try:
                good = await call(i) < 400
            except (aiohttp.ClientError, TimeoutError):
                good = False
            if good:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Figures(name, latencies, errors, time.perf_counter() - started)


def baselines(report: Report, count: int, concurrency: int, c1_count: int) -> None:
    """The floors, on uvicorn as `visgate serve` runs it: bare FastAPI (`bare`, at
    `concurrency`; `bare c1`, one at a time) and a raw ASGI callable (`asgi`)."""
    ports = {"bare_app:app": free_port(), "bare_asgi:app": free_port()}
    procs = [start(uvicorn_args(target, port), dict(os.environ)) for target, port in ports.items()]
    try:
        app, asgi = (f"http://127.0.0.1:{port}" for port in ports.values())
        for url in (app, asgi):
            wait_http(f"{url}/")
        print(f"== baselines (uvicorn, as `visgate serve` runs it), c={concurrency}")
        name = "bare FastAPI GET / -> {}"
        report.add("bare", asyncio.run(get_root(app, name, count, concurrency)), "bare")
        asgi_name = "bare ASGI GET / -> {}"
        report.add("asgi", asyncio.run(get_root(asgi, asgi_name, count, concurrency)), "bare")
        print(f"-- c=1 (service time), {c1_count} requests")
        report.add("bare c1", asyncio.run(get_root(app, name, c1_count, 1)), "bare c1")
    finally:
        for proc in procs:
            stop(proc)

"""Shared bits for the bench scripts: start a service subprocess, issue a key, measure."""

from __future__ import annotations

import asyncio
import json
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

    def line(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"{self.name:<28} no successful requests, {self.errors} errors"

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        return (
            f"{self.name:<28} n={len(lat):>6}  p50={pct(0.50):7.2f} ms  p99={pct(0.99):7.2f} ms"
            f"  p999={pct(0.999):7.2f} ms  mean={statistics.fmean(lat) * 1000:6.2f} ms"
            f"  {len(lat) / self.elapsed:8.0f} req/s  errors={self.errors}"
        )


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

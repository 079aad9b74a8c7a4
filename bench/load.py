"""Sustained load: N concurrent clients on POST / GET / list for D seconds against a real
`visgate serve` subprocess, on SQLite (default) or the Firestore emulator.

The service runs with PROVIDER=local and the reconciler OFF (VISGATE_RECONCILER=false): this
measures the API and its store under load; with the reconciler on, every POST would start a
local worker process. The per-key rate limit is lifted so it does not cap the figures.

Two ways to load it. By default each client sends its next request the moment the last
one answers (a closed loop with no think time): that finds the service's capacity, and the
latency it prints is mostly queueing (Little's law: clients / throughput). With `--rate R`
each client thinks a random (exponential) while between requests, R requests/s on average,
as dashboards and scripts do: that shows the latency a user sees at a given offered load.

Prints throughput, p50/p99/p999 per route, error counts, and the server's RSS sampled every
second (start, peak, end; growth under steady load would be a leak).
Run: .venv/bin/python bench/load.py [--clients 200] [--duration 60] [--rate 2]
     [--backend firestore]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import VISGATE, Figures, base_env, free_port, issue_key, start, wait_http

# Share of each operation in a client's loop: reads dominate, as for real dashboards.
MIX = (
    ("POST /v1/deployments", 0.2),
    ("GET /v1/deployments/{id}", 0.5),
    ("GET /v1/deployments", 0.3),
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sid: int) -> float:
    """CPU of every process in a session: the emulator's launcher script and its JVM."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    """Resident set size of the server and its children, in MiB (Linux /proc)."""
    total = 0
    try:
        import psutil

        proc = psutil.Process(pid)
        for p in (proc, *proc.children(recursive=True)):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except ImportError:
        text = Path(f"/proc/{pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS"))
        return kb / 1024


async def run_load(
    url: str,
    key: str,
    clients: int,
    duration: float,
    pid: int,
    rate: float,
    emulator_sid: int | None = None,
) -> None:
    # aiohttp, not httpx, drives the load: at 200 clients httpx spends ~3x the CPU per
    # request, and on 2 cores the driver, not the service, became the bottleneck.
    headers = {"Authorization": f"Bearer {key}"}
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    error_kinds: dict[str, int] = defaultdict(int)
    ids: list[str] = []
    rss: list[tuple[float, float]] = []
    names = [name for name, _ in MIX]
    weights = [w for _, w in MIX]
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    cpu_start = cpu_seconds(pid)
    emulator_start = session_cpu_seconds(emulator_sid) if emulator_sid else 0.0
    async with aiohttp.ClientSession(
        url, connector=connector, headers=headers, timeout=timeout
    ) as client:
        for i in range(50):  # warm-up, and ids for the first GETs
            async with client.post(
                "/v1/deployments", json={"hf_model_id": f"org/warm-{i}"}
            ) as resp:
                resp.raise_for_status()
                ids.append((await resp.json())["deployment_id"])
        started = time.perf_counter()
        deadline = started + duration

        async def one(name: str, rng: random.Random) -> int:
            if name.startswith("POST"):
                body = {"hf_model_id": f"org/model-{rng.randrange(100)}"}
                async with client.post("/v1/deployments", json=body) as resp:
                    if resp.status == 202:
                        ids.append((await resp.json())["deployment_id"])
                    else:
                        await resp.read()
                    return resp.status
            path = (
                f"/v1/deployments/{rng.choice(ids)}"
                if name.endswith("{id}")
                else "/v1/deployments?limit=20"
            )
            async with client.get(path) as resp:
                await resp.read()
                return resp.status

        async def user(seed: int) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                if rate > 0:
                    await asyncio.sleep(rng.expovariate(rate))
                name = rng.choices(names, weights)[0]
                t0 = time.perf_counter()
                try:
                    status = await one(name, rng)
                    ok, kind = status < 400, str(status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok, kind = False, type(exc).__name__
                if ok:
                    latencies[name].append(time.perf_counter() - t0)
                else:
                    errors[name] += 1
                    error_kinds[kind] += 1

        async def sample_rss() -> None:
            while time.perf_counter() < deadline:
                rss.append((time.perf_counter() - started, rss_mb(pid)))
                await asyncio.sleep(1.0)

        await asyncio.gather(sample_rss(), *(user(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    server_cpu = (cpu_seconds(pid) - cpu_start) / elapsed * 100
    total_ok = sum(len(v) for v in latencies.values())
    total_err = sum(errors.values())
    pacing = f"{rate:g} req/s each (think time)" if rate > 0 else "closed loop, no think time"
    print(f"clients={clients} {pacing} duration={elapsed:.1f}s deployments_created={len(ids)}")
    print(f"throughput {total_ok / elapsed:.0f} req/s ok, errors={total_err} {dict(error_kinds)}")
    print(f"server CPU {server_cpu:.0f}% of one core (100% = the service is the bottleneck)")
    if emulator_sid:
        emulator_cpu = (session_cpu_seconds(emulator_sid) - emulator_start) / elapsed * 100
        print(f"Firestore emulator CPU {emulator_cpu:.0f}% of one core (it shares these cores)")
    for name in names:
        print(Figures(name, latencies[name], errors[name], elapsed).line())
    if rss:
        values = [mb for _, mb in rss]
        print(
            f"server RSS MiB: start={values[0]:.0f} peak={max(values):.0f} end={values[-1]:.0f}"
            f" ({len(values)} samples)"
        )
        step = max(1, len(rss) // 10)
        print("  " + "  ".join(f"t={t:.0f}s:{mb:.0f}" for t, mb in rss[::step]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s per client; 0: closed loop"
    )
    parser.add_argument("--backend", choices=("sqlite", "firestore"), default="sqlite")
    args = parser.parse_args()
    emulator = None
    with tempfile.TemporaryDirectory() as tmp:
        extra = {
            "VISGATE_RECONCILER": "false",
            "PROVIDER": "local",
            "RATE_LIMIT_PER_MINUTE": "100000000",
            "TENANT_MAX_DEPLOYMENTS": "100000000",
            "TENANT_MAX_WORKERS": "100000000",
            "HF_HUB_OFFLINE": "1",
        }
        if args.backend == "firestore":
            from tests.support.firestore_emulator import PROJECT, FirestoreEmulator

            emulator = FirestoreEmulator().start()
            extra |= {
                "STORE": "firestore",
                "GCP_PROJECT_ID": PROJECT,
                "FIRESTORE_EMULATOR_HOST": emulator.host,
            }
        env = base_env(Path(tmp), **extra)
        port = free_port()
        service = None
        try:
            key = issue_key(env)
            service = start([*VISGATE, "serve", "--port", str(port)], env)
            wait_http(f"http://127.0.0.1:{port}/health")
            print(f"backend={args.backend} (reconciler off, PROVIDER=local) pid={service.pid}")
            asyncio.run(
                run_load(
                    f"http://127.0.0.1:{port}",
                    key,
                    args.clients,
                    args.duration,
                    service.pid,
                    args.rate,
                    emulator.proc.pid if emulator and emulator.proc else None,
                )
            )
        finally:
            if service is not None:
                service.terminate()
                try:
                    service.wait(timeout=10)
                except subprocess.TimeoutExpired:  # stuck requests can hold shutdown open
                    print("server ignored SIGTERM for 10 s; killed")
                    service.kill()
                    service.wait(timeout=10)
            if emulator is not None:
                emulator.stop()


if __name__ == "__main__":
    main()

"""API latency and memory of `visgate serve`, each figure beside its floor from the same run.

Baselines, on this venv's uvicorn with the flags `visgate serve` uses (warning logs, no
access log): bare_app.py, FastAPI answering `GET / -> {}` (the ratio's denominator: what a
route costs before the service's own code), and bare_asgi.py, a raw ASGI callable answering
`{}` (what uvicorn alone costs). The service, in two modes:

  api         VISGATE_RECONCILER=false on SQLite, HF_HUB_OFFLINE=1: the API by itself.
  reconciler  what a user runs: `visgate serve` with its reconciler and webhook deliveries
              on (at the service's default timers, not the tests' fast ones), against the
              fake hub, fake Runpod and fake workers of tests/support/stack.py. Each POSTed
              deployment gets an endpoint, a ready callback and a delivered webhook, while
              the load runs and after: how far the reconciler got is printed after each
              route, and how long it took to finish. The stack runs in a child process, so
              the fakes' threads (one per fake worker) share no GIL with the driver.

Per mode: POST /v1/deployments, GET /v1/deployments/{id} (the POSTed ids), then GET /health,
in that order so that health, too, is measured while the reconciler works. Each is `--count`
requests at `--concurrency` through `_harness.drive` (aiohttp, closed loop). Every line
ends with p99 ÷ the bare FastAPI p99 at the same concurrency. API mode adds a c=1 pass
(service time, beside bare FastAPI at c=1) and then `--rss-posts` more POSTs with the
server's VmRSS before and after and its VmHWM (`visgate serve` runs uvicorn in-process, so
the pid is the server's). A summary compares the figures with their targets; the exit code
is 1 when any request failed (a MISS alone still exits 0).

    .venv/bin/python bench/api_latency.py [--mode api|reconciler|both] [--count 3000]
        [--concurrency 50] [--c1-count 500] [--rss-posts 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from _harness import (  # noqa: E402
    VISGATE,
    Check,
    Figures,
    Report,
    base_env,
    baselines,
    drive,
    free_port,
    issue_key,
    proc_mb,
    read_status,
    serving_alone,
    session,
    start,
    stop,
    wait_http,
)

HIGH = "100000000"  # no 429 or 409 in a bench
LIMITS = {"RATE_LIMIT_PER_MINUTE": HIGH, "TENANT_MAX_DEPLOYMENTS": HIGH, "TENANT_MAX_WORKERS": HIGH}
# The test stack's fast timers: removed, so the reconciler runs on the service's defaults.
TEST_TIMERS = (
    *("VISGATE_POLL_INTERVAL", "VISGATE_HEALTH_POLL_SECONDS", "VISGATE_LEASE_SECONDS"),
    *("VISGATE_DELIVERY_LEASE_SECONDS", "VISGATE_SWEEP_INTERVAL", "WEBHOOK_RETRY_SCHEDULE"),
)
WARM_UP = 200
ROUTES = ("POST /v1/deployments", "GET /v1/deployments/{id}", "GET /health")


@dataclass
class Service:
    """A `visgate serve` under test: where it listens, as whom, what each POST sends."""

    url: str
    key: str
    pid: int
    body: Callable[[int], dict[str, Any]]
    progress: Callable[[], dict[str, int]] | None = None  # the reconciler's, so far


@contextlib.contextmanager
def api_service(tmp: Path) -> Iterator[Service]:
    env = base_env(tmp, VISGATE_RECONCILER="false", HF_HUB_OFFLINE="1", **LIMITS)
    key, port = issue_key(env), free_port()
    proc = start([*VISGATE, "serve", "--port", str(port)], env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        body = lambda i: {"hf_model_id": f"org/model-{i % 50}"}  # noqa: E731
        yield Service(f"http://127.0.0.1:{port}", key, proc.pid, body)
    finally:
        stop(proc)


@contextlib.contextmanager
def reconciler_service(tmp: Path) -> Iterator[Service]:
    log_path = tmp / "stack.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, __file__, "--host-stack"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert child.stdin and child.stdout
    stdin, stdout = child.stdin, child.stdout

    def answer() -> dict[str, Any]:
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the stack exited:\n{log_path.read_text()[-3000:]}")
        return dict(json.loads(line))

    def progress() -> dict[str, int]:
        stdin.write("stats\n")
        stdin.flush()
        return answer()

    try:
        info = answer()
        yield Service(info["url"], info["key"], info["pid"], lambda i: info["body"], progress)
    finally:
        stdin.close()  # EOF: the child stops the service and the fakes
        child.wait(timeout=60)


def host_stack() -> None:
    """The child's side: the fakes and `visgate serve` up; one JSON line says where it
    listens, one more answers each `stats` line on stdin; EOF stops everything."""
    sys.path.insert(0, str(BENCH.parent))
    from tests.fakes.runpod_state import API_KEY
    from tests.support.receivers import FakeWorker
    from tests.support.stack import run_stack

    with (
        tempfile.TemporaryDirectory() as tmp,
        run_stack(Path(tmp), worker=FakeWorker(delay=0.0), LOG_LEVEL="warning", **LIMITS) as stack,
    ):
        for name in TEST_TIMERS:
            stack.env.pop(name, None)
        stack.env["VISGATE_RECONCILER"] = "true"
        service = stack.start()
        body = {
            "hf_model_id": "stabilityai/sdxl-turbo",
            "user_runpod_key": API_KEY,
            "user_webhook_url": stack.receiver.url,
        }
        info = {"url": stack.url, "key": stack.key["api_key"], "pid": service.proc.pid}
        print(json.dumps({**info, "body": body}), flush=True)
        for _ in sys.stdin:
            hooks = [k for k in stack.receiver.by_event() if k.endswith(":deployment.ready")]
            endpoints = stack.runpod.state.created_names("endpoint")
            stats = {"endpoints": len(endpoints), "ready": len(stack.worker.ready_at)}
            print(json.dumps({**stats, "webhooks": len(hooks)}), flush=True)


def poster(
    client: aiohttp.ClientSession, svc: Service, ids: list[str]
) -> Callable[[int], Awaitable[int]]:
    async def post(i: int) -> int:
        async with client.post("/v1/deployments", json=svc.body(i)) as resp:
            if resp.status == 202:
                ids.append((await resp.json())["deployment_id"])
            return await read_status(resp)

    return post


async def routes(
    svc: Service, count: int, concurrency: int, report: Callable[[Figures], None]
) -> None:
    """POST, GET of the POSTed ids, health; `report` sees each route's figures at once."""
    ids: list[str] = []
    async with session(svc.url, concurrency, svc.key) as client:

        async def get(path: str) -> int:
            async with client.get(path) as resp:
                return await read_status(resp)

        for _ in range(WARM_UP):
            await get("/health")
        report(await drive(ROUTES[0], count, concurrency, poster(client, svc, ids)))
        if not ids:
            raise RuntimeError("no POST succeeded: nothing to GET")
        by_id = lambda i: get(f"/v1/deployments/{ids[i % len(ids)]}")  # noqa: E731
        report(await drive(ROUTES[1], count, concurrency, by_id))
        report(await drive(ROUTES[2], count, concurrency, lambda i: get("/health")))


async def post_many(svc: Service, count: int, concurrency: int) -> Figures:
    async with session(svc.url, concurrency, svc.key) as client:
        call = poster(client, svc, [])
        return await drive(f"POST x{count} (RSS phase)", count, concurrency, call)


def run_api(args: argparse.Namespace, tmp: Path, report: Report) -> float | None:
    """The API alone: routes at c and at c=1, then the RSS phase; returns the RSS after it."""
    c = args.concurrency
    with api_service(tmp) as svc:
        print(f"\n== api mode (VISGATE_RECONCILER=false), pid {svc.pid}, c={c}")
        serving_alone(svc.pid)
        asyncio.run(routes(svc, args.count, c, lambda f: report.add(f"api {f.name}", f, "bare")))
        print(f"-- c=1 (service time), {args.c1_count} per route")
        add1 = lambda f: report.add(f"api c1 {f.name}", f, "bare c1")  # noqa: E731
        asyncio.run(routes(svc, args.c1_count, 1, add1))
        if not args.rss_posts:
            return None
        before = proc_mb(svc.pid, "VmRSS")
        report.add("api rss", asyncio.run(post_many(svc, args.rss_posts, c)), "bare")
        after, peak = proc_mb(svc.pid, "VmRSS"), proc_mb(svc.pid, "VmHWM")
        print(
            f"   VmRSS of pid {svc.pid}: {before:.1f} MB before the {args.rss_posts} POSTs,"
            f" {after:.1f} MB after ({after - before:+.1f} MB); peak (VmHWM) {peak:.1f} MB;"
            f" {args.count + args.c1_count + args.rss_posts} POSTs to this service in all"
        )
        return after


def run_reconciler(args: argparse.Namespace, tmp: Path, report: Report) -> None:
    """The service with its reconciler on; after each route, how far the reconciler got."""
    with reconciler_service(tmp) as svc:
        assert svc.progress
        progress, n = svc.progress, args.count
        print(
            f"\n== reconciler mode (fake hub, Runpod, workers), pid {svc.pid}, c={args.concurrency}"
        )
        serving_alone(svc.pid)

        def add(figures: Figures) -> None:
            report.add(f"rec {figures.name}", figures, "bare")
            got = progress()
            print(
                f"   reconciler so far: {got['endpoints']} endpoints created, {got['ready']}"
                f" ready callbacks, {got['webhooks']} ready webhooks (of {n} POSTed)"
            )

        asyncio.run(routes(svc, n, args.concurrency, add))
        done = time.monotonic()
        while (got := progress())["webhooks"] < n and time.monotonic() - done < 120:
            time.sleep(0.5)
        print(
            f"   {got['webhooks']}/{n} ready webhooks delivered {time.monotonic() - done:.1f} s"
            f" after the load; VmRSS {proc_mb(svc.pid, 'VmRSS'):.1f} MB,"
            f" VmHWM {proc_mb(svc.pid, 'VmHWM'):.1f} MB"
        )


def summary(args: argparse.Namespace, report: Report, rss: float | None) -> None:
    c, posts = args.concurrency, args.count + args.c1_count + args.rss_posts
    ratio = lambda route: report.p99_ratio(f"rec {route}", "bare")  # noqa: E731
    rate = lambda route: report.rate(f"api {route}")  # noqa: E731
    checks = [
        *(
            Check(f"reconciler c={c} {route} p99 / bare FastAPI p99", ratio(route), "<=", lim, "x")
            for route, lim in zip(ROUTES, (3.0, 2.0, 1.2), strict=True)
        ),
        Check(f"api c={c} {ROUTES[0]} req/s", rate(ROUTES[0]), ">=", 3000, digits=0),
        Check(f"api c={c} {ROUTES[1]} req/s", rate(ROUTES[1]), ">=", 4000, digits=0),
        Check(
            f"api VmRSS after {args.rss_posts:,} more POSTs ({posts:,} in all)",
            rss,
            "<",
            150,
            " MB",
            digits=1,
        ),
        Check("errors, every line above", float(report.errors), "==", 0, digits=0),
    ]
    print("\n== targets: measured, target, verdict")
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(check.line(width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["api", "reconciler", "both"], default="both")
    parser.add_argument("--count", type=int, default=3000, help="requests per route")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--c1-count", type=int, default=500, help="requests per route at c=1")
    parser.add_argument("--rss-posts", type=int, default=10000, help="POSTs between RSS reads")
    parser.add_argument("--host-stack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.host_stack:
        host_stack()
        return
    extras = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m)]
    print(
        f"uvicorn {importlib.metadata.version('uvicorn')} ({', '.join(extras) or 'asyncio, h11'}),"
        f" {os.cpu_count()} CPUs; {args.count} requests per route at c={args.concurrency};"
        " p99/bare = p99 / bare FastAPI p99 at the same concurrency"
    )
    started, report, rss = time.monotonic(), Report(), None
    baselines(report, args.count, args.concurrency, args.c1_count)
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("api", "both"):
            rss = run_api(args, Path(tmp), report)
        if args.mode in ("reconciler", "both"):
            run_reconciler(args, Path(tmp), report)
    summary(args, report, rss)
    print(f"({time.monotonic() - started:.0f} s in all)")
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()

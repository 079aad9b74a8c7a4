"""1,000 deployments from POST to webhook delivered, against the fake hub, fake Runpod and
fake workers, through one `visgate serve` on SQLite (or `--store firestore` with
FIRESTORE_EMULATOR_HOST set). Prints total time, POST → webhook latency, ready callback →
webhook received latency, and the control plane's peak RSS — by default once with each
Runpod API (`RUNPOD_API=graphql` and `rest`), printed side by side.

    .venv/bin/python bench/orchestration.py [--count 1000] [--concurrency 50] [--api both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.runpod_state import API_KEY
from tests.support.receivers import FakeWorker
from tests.support.stack import Stack, run_stack

DELIVERED = "webhook deployment.ready delivered"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def server_side_hook_latency(stack: Stack, ids: list[str]) -> tuple[list[float], list[float]]:
    """From each record's log, on the control plane's clock: ready callback applied ->
    webhook POST sent, and -> 2xx logged. The bench process (fakes, receiver, 1,000 worker
    threads on one GIL) delays its own timestamps and its receiver's answers by tens of ms
    under this load; "sent" leaves the receiver's time out (the log says how long it took)."""
    headers = {"Authorization": f"Bearer {stack.key['api_key']}"}
    limits = httpx.Limits(max_connections=20)
    sent: list[float] = []
    delivered: list[float] = []
    async with httpx.AsyncClient(
        base_url=stack.url, headers=headers, timeout=60, limits=limits
    ) as client:
        sem = asyncio.Semaphore(20)

        async def one(dep_id: str) -> None:
            async with sem:
                logs = (await client.get(f"/v1/deployments/{dep_id}")).json()["logs"]
            ready = [_ts(e["at"]) for e in logs if e["message"].startswith("worker ready")]
            hooks = [e for e in logs if e["message"].startswith(DELIVERED)]
            if not (ready and hooks):
                return
            done = _ts(hooks[0]["at"])
            delivered.append(done - ready[0])
            took = re.search(r" in (\d+) ms", hooks[0]["message"])
            if took:
                sent.append(done - int(took[1]) / 1000 - ready[0])

        await asyncio.gather(*(one(d) for d in ids))
    return sent, delivered


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def post_all(stack: Stack, count: int, concurrency: int) -> dict[str, float]:
    posted: dict[str, float] = {}
    todo = iter(range(count))
    headers = {"Authorization": f"Bearer {stack.key['api_key']}"}
    body = {
        "hf_model_id": "stabilityai/sdxl-turbo",
        "user_webhook_url": stack.receiver.url,
        "user_runpod_key": API_KEY,
    }
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:

        async def worker() -> None:
            for _ in todo:
                at = time.time()
                resp = await client.post("/v1/deployments", json=body)
                resp.raise_for_status()
                posted[resp.json()["deployment_id"]] = at

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted


def run_once(args: argparse.Namespace, api: str) -> dict[str, str]:
    """One burst through a fresh stack driving Runpod through `api`; the figures as text."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_stack(
            Path(tmp),
            store=args.store,
            emulator_host=os.environ.get("FIRESTORE_EMULATOR_HOST"),
            worker=FakeWorker(delay=0.0),
            LOG_LEVEL="warning",
            VISGATE_HEALTH_POLL_SECONDS="5",
            VISGATE_LEASE_SECONDS="30",
            RUNPOD_API=api,
        ) as stack,
    ):
        service = stack.start()
        started = time.time()
        posted = asyncio.run(post_all(stack, args.count, args.concurrency))
        post_done = time.time()
        deadline = time.monotonic() + args.timeout
        received: dict[str, float] = {}
        while time.monotonic() < deadline and len(received) < len(posted):
            for key, deliveries in stack.receiver.by_event().items():
                dep_id, event = key.split(":")
                if event == "deployment.ready" and dep_id not in received:
                    received[dep_id] = deliveries[0].at
            time.sleep(0.2)
        total = max(received.values(), default=time.time()) - started
        e2e = [received[d] - posted[d] for d in received]
        hook = [
            received[d] - stack.worker.ready_at[d] for d in received if d in stack.worker.ready_at
        ]
        sent, delivered = asyncio.run(server_side_hook_latency(stack, list(received)))
        endpoints = stack.runpod.state.created_names("endpoint")
        ms = lambda values, p: f"{pct(values, p) * 1000:.1f}"  # noqa: E731
        return {
            "deployments / webhooks received": f"{len(posted)} / {len(received)}",
            "POSTs done in (s)": f"{post_done - started:.2f}",
            "total, first POST -> last webhook (s)": f"{total:.2f}",
            "POST -> webhook p50 / p99 (s)": f"{pct(e2e, 0.5):.2f} / {pct(e2e, 0.99):.2f}",
            "ready sent -> webhook received p50 / p99 (ms)": f"{ms(hook, 0.5)} / {ms(hook, 0.99)}",
            "ready applied -> webhook sent p50 / p99 (ms)": f"{ms(sent, 0.5)} / {ms(sent, 0.99)}",
            "ready applied -> delivered p50 / p99 (ms)": (
                f"{ms(delivered, 0.5)} / {ms(delivered, 0.99)}"
            ),
            "control plane peak RSS (MB)": f"{peak_rss_mb(service.proc.pid):.0f}",
            "control plane CPU (s)": f"{cpu_seconds(service.proc.pid):.1f}",
            "endpoints created (unique)": f"{len(endpoints)} ({len(set(endpoints))})",
            "Runpod control calls": str(
                sum(c.surface in ("graphql", "rest") for c in stack.runpod.state.calls)
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--store", choices=["sqlite", "firestore"], default="sqlite")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--api",
        choices=["graphql", "rest", "both"],
        default="both",
        help="which Runpod API the control plane drives (both: one run each, side by side)",
    )
    args = parser.parse_args()
    apis = ["graphql", "rest"] if args.api == "both" else [args.api]
    results = {api: run_once(args, api) for api in apis}
    print(f"store={args.store} count={args.count} concurrency={args.concurrency}")
    width = max(len(k) for k in results[apis[0]])
    print(f"{'':<{width}}  " + "  ".join(f"{api:>16}" for api in apis))
    for key in results[apis[0]]:
        print(f"{key:<{width}}  " + "  ".join(f"{results[api][key]:>16}" for api in apis))


if __name__ == "__main__":
    main()

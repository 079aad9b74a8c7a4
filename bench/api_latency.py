"""API latency on SQLite: GET /health, POST /v1/deployments, GET /v1/deployments/{id}
at concurrency 50, beside a bare uvicorn app returning {} in the same run.

Targets on a 2-core machine: POST p99 < 20 ms, GET p99 < 10 ms, health p99 < 5 ms.
Run: .venv/bin/python bench/api_latency.py [--count 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import VISGATE, base_env, drive, free_port, issue_key, start, wait_http


async def measure(url: str, bare_url: str, key: str, count: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:
        for _ in range(200):  # warm-up
            await client.get("/health")
        ids: list[str] = []

        async def post(i: int) -> httpx.Response:
            resp = await client.post("/v1/deployments", json={"hf_model_id": f"org/model-{i % 50}"})
            if resp.status_code == 202:
                ids.append(resp.json()["deployment_id"])
            return resp

        results = [
            await drive("GET /health", count, concurrency, lambda i: client.get("/health")),
            await drive("POST /v1/deployments", count, concurrency, post),
            await drive(
                "GET /v1/deployments/{id}",
                count,
                concurrency,
                lambda i: client.get(f"/v1/deployments/{ids[i % len(ids)]}"),
            ),
        ]
    async with httpx.AsyncClient(base_url=bare_url, limits=limits) as bare:
        for _ in range(200):
            await bare.get("/")
        results.append(
            await drive("bare uvicorn GET / -> {}", count, concurrency, lambda i: bare.get("/"))
        )
    print(f"concurrency={concurrency} count={count} per route")
    for figures in results:
        print(figures.line())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = base_env(
            Path(tmp),
            VISGATE_RECONCILER="false",
            RATE_LIMIT_PER_MINUTE="100000000",
            HF_HUB_OFFLINE="1",
        )
        key = issue_key(env)
        port, bare_port = free_port(), free_port()
        service = start([*VISGATE, "serve", "--port", str(port)], env)
        bare = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--app-dir",
                str(Path(__file__).parent),
            ],
            env,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            wait_http(f"http://127.0.0.1:{bare_port}/")
            asyncio.run(
                measure(
                    f"http://127.0.0.1:{port}",
                    f"http://127.0.0.1:{bare_port}",
                    key,
                    args.count,
                    args.concurrency,
                )
            )
        finally:
            for proc in (service, bare):
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()

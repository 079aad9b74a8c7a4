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

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import VISGATE, base_env, drive, free_port, issue_key, start, wait_http


async def measure(url: str, bare_url: str, key: str, count: int, concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=30)

    async def status(resp: aiohttp.ClientResponse) -> int:
        await resp.read()
        return resp.status

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        url, connector=connector, headers=headers, timeout=timeout
    ) as client:
        for _ in range(200):  # warm-up
            await status(await client.get("/health"))
        ids: list[str] = []

        async def post(i: int) -> int:
            async with client.post(
                "/v1/deployments", json={"hf_model_id": f"org/model-{i % 50}"}
            ) as resp:
                if resp.status == 202:
                    ids.append((await resp.json())["deployment_id"])
                return await status(resp)

        async def get(path: str) -> int:
            async with client.get(path) as resp:
                return await status(resp)

        results = [
            await drive("GET /health", count, concurrency, lambda i: get("/health")),
            await drive("POST /v1/deployments", count, concurrency, post),
            await drive(
                "GET /v1/deployments/{id}",
                count,
                concurrency,
                lambda i: get(f"/v1/deployments/{ids[i % len(ids)]}"),
            ),
        ]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(bare_url, connector=connector, timeout=timeout) as bare:

        async def bare_get(i: int) -> int:
            async with bare.get("/") as resp:
                return await status(resp)

        for i in range(200):
            await bare_get(i)
        results.append(await drive("bare uvicorn GET / -> {}", count, concurrency, bare_get))
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
            TENANT_MAX_DEPLOYMENTS="100000000",
            TENANT_MAX_WORKERS="100000000",
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

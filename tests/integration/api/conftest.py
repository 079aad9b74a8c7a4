"""An API under test: the real app on a temporary SQLite store and local secret store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from visgate.api.app import create_app
from visgate.auth.api_keys import IssuedKey, issue_key
from visgate.services import Services, build_services
from visgate.settings import load_settings


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    keys: dict[str, IssuedKey]
    db_path: Path
    app: FastAPI

    def auth(self, name: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name].api_key}"}

    async def post_deployment(self, name: str = "alice", **body: Any) -> httpx.Response:
        body.setdefault("hf_model_id", "stabilityai/sdxl-turbo")
        return await self.client.post("/v1/deployments", json=body, headers=self.auth(name))


def api_settings(tmp_path: Path, **env: Any) -> Any:
    values = {
        "VISGATE_DB_PATH": str(tmp_path / "visgate.db"),
        "WEBHOOK_ALLOW_PRIVATE_URLS": True,
        "VISGATE_SECRET_KEY": None,
        # Tests of other features make many deployments per tenant; quota tests set theirs.
        "TENANT_MAX_DEPLOYMENTS": 100_000,
        "TENANT_MAX_WORKERS": 100_000,
        **env,
    }
    return load_settings(**values)


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[tuple[Any, Services, httpx.AsyncClient]] = []

    async def factory(**env: Any) -> Api:
        settings = api_settings(tmp_path, **env)
        services = build_services(settings, provider=False, hub=False)
        app = create_app(services=services, run_reconciler=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://visgate.test"
        )
        opened.append((lifespan, services, client))
        keys = {name: await issue_key(services, name) for name in ("alice", "bob")}
        return Api(client=client, services=services, keys=keys, db_path=settings.db_path, app=app)

    yield factory
    for lifespan, services, client in opened:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await services.aclose()


@pytest.fixture
async def api(make_api: Any) -> Api:
    return await make_api()


@dataclass
class ProbeRun:
    """A `log_probe` session: its answers and every line the process wrote."""

    result: dict[str, Any]
    output: str  # stdout + stderr, raw
    records: list[dict[str, Any]]  # the JSON log lines
    data_dir: Path


@pytest.fixture(scope="session")
def probe_run(tmp_path_factory: pytest.TempPathFactory) -> ProbeRun:
    import json
    import subprocess
    import sys

    data_dir = tmp_path_factory.mktemp("log_probe")
    result_path = data_dir / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.api.log_probe", str(data_dir), str(result_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return ProbeRun(
        result=json.loads(result_path.read_text(encoding="utf-8")),
        output=proc.stdout + proc.stderr,
        records=records,
        data_dir=data_dir,
    )

"""One API session in a fresh process, logging as in production (JSON lines on stderr).

structlog loggers cache their configuration on first use, so inside a pytest process a
module's logger may still write to whatever an earlier test configured, and capturing its
output there proves nothing. A fresh process has no such history: what it writes is
exactly what an operator's log pipeline receives.

    python -m tests.integration.api.log_probe DATA_DIR RESULT_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.api.conftest import api_settings
from visgate.api.app import create_app
from visgate.auth.api_keys import issue_key

RUNPOD_KEY = "rpa_SECRET_runpod_key_0123456789"
HF_TOKEN = "hf_SECRET_token_abcdefghijklmnop"


async def session(data_dir: Path) -> dict[str, Any]:
    """Create (with both user secrets), read, list, scrape metrics, call back, delete."""
    settings = api_settings(data_dir, LOG_LEVEL="debug", HF_HUB_OFFLINE=True)
    app = create_app(settings, run_reconciler=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://visgate.test") as client,
    ):
        services = app.state.services
        key = await issue_key(services, "alice")
        auth = {"Authorization": f"Bearer {key.api_key}"}
        body = {
            "hf_model_id": "stabilityai/sdxl-turbo",
            "user_runpod_key": RUNPOD_KEY,
            "hf_token": HF_TOKEN,
        }
        created = await client.post("/v1/deployments", json=body, headers=auth)
        dep_id = created.json()["deployment_id"]
        answers = [
            created,
            await client.get(f"/v1/deployments/{dep_id}", headers=auth),
            await client.get("/v1/deployments", headers=auth),
            await client.get("/metrics"),
            await client.post(
                f"/internal/deployment-ready/{dep_id}",
                json={"status": "loading_model"},
                headers={"Authorization": "Bearer " + services.callback_tokens.token(dep_id)},
            ),
        ]
        deleted = await client.delete(f"/v1/deployments/{dep_id}", headers=auth)
        return {
            "deployment_id": dep_id,
            "statuses": [r.status_code for r in [*answers, deleted]],
            "answers": [r.text for r in answers],
            "delete_request_id": deleted.headers["x-request-id"],
            "api_key": key.api_key,
            "webhook_secret": key.webhook_secret,
            "callback_token": services.callback_tokens.token(dep_id),
        }


if __name__ == "__main__":
    result = asyncio.run(session(Path(sys.argv[1])))
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")

"""`visgate cost`, `visgate deploy`'s limit options and `visgate keys`' quotas, as a person
runs them (a real `visgate` subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.cli.scripted_api import DEP, Request, fake_api, visgate

__all__ = ["fake_api"]  # the fixture, used by name

COST = {
    "deployment_id": DEP,
    "currency": "USD",
    "price_per_hour": 2.232,
    "workers": 2,
    "spend": 0.3348,
    "spend_source": "estimated",
    "since": "2026-12-05T10:00:00Z",
    "until": "2026-12-05T10:09:00Z",
}


def test_cost_prints_the_price_now_and_the_spend(fake_api: tuple[str, Any]) -> None:
    url, handler = fake_api
    handler.routes[("GET", f"/v1/deployments/{DEP}/cost")] = lambda r: r.json(200, COST)
    done = visgate("cost", DEP, url=url)
    assert done.returncode == 0, done.stderr
    line = " ".join(done.stdout.split())
    assert "$2.2320/h now (2 workers)" in line
    assert "spent $0.3348 (estimated)" in line
    assert json.loads(visgate("cost", DEP, "--json", url=url).stdout) == COST


def test_cost_of_an_unknown_deployment_is_one_error_line(fake_api: tuple[str, Any]) -> None:
    url, handler = fake_api
    missing = {"error": {"type": "DeploymentNotFoundError", "message": "not found"}}
    handler.routes[("GET", f"/v1/deployments/{DEP}/cost")] = lambda r: r.json(404, missing)
    done = visgate("cost", DEP, url=url)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("DeploymentNotFoundError")


def test_deploy_sends_the_limits_it_is_given(fake_api: tuple[str, Any]) -> None:
    url, handler = fake_api
    sent: list[Any] = []

    def accept(r: Request) -> None:
        sent.append(r.body)
        r.json(
            202,
            {
                "deployment_id": DEP,
                "status": "validating",
                "model_id": "o/m",
                "estimated_ready_seconds": 60,
                "webhook_url": None,
                "created_at": "2026-12-05T10:00:00Z",
            },
        )

    handler.routes[("POST", "/v1/deployments")] = accept
    args = ("deploy", "o/m", "--max-workers", "2", "--region", "EU", "--ttl", "600")
    assert visgate(*args, url=url).returncode == 0
    assert sent == [{"hf_model_id": "o/m", "max_workers": 2, "region": "EU", "ttl_seconds": 600}]
    assert visgate("deploy", "o/m", url=url).returncode == 0
    assert sent[-1] == {"hf_model_id": "o/m"}


def test_keys_carry_their_quotas_and_refuse_zero(tmp_path: Path) -> None:
    env = {"VISGATE_DB_PATH": str(tmp_path / "v.db"), "PROVIDER": "local"}
    made = visgate("keys", "create", "--name", "small", "--max-deployments", "2", env=env)
    assert made.returncode == 0, made.stderr
    assert visgate("keys", "create", "--name", "plain", env=env).returncode == 0
    again = visgate("keys", "create", "--name", "plain", env=env)
    assert again.returncode == 1
    assert "ConflictError: an API key named 'plain' exists already" in again.stderr
    zero = visgate("keys", "create", "--name", "none", "--max-workers", "0", env=env)
    assert zero.returncode == 2 and "max-workers" in zero.stderr
    listed = json.loads(visgate("keys", "list", "--json", env=env).stdout)
    quotas = {k["name"]: (k["max_deployments"], k["max_workers"]) for k in listed}
    assert quotas == {"small": (2, 5), "plain": (10, 5)}  # the defaults where not set

"""The README's quickstart, command for command, in subprocesses: service up (SQLite, local
provider, demo models), key created, deploy --wait, job run, list, logs, delete."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.firestore_emulator import free_port

pytestmark = pytest.mark.slow

VISGATE = [sys.executable, "-m", "visgate"]


def run(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VISGATE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def service(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "VISGATE_DB_PATH": str(tmp_path / "data" / "visgate.db"),
        "PROVIDER": "local",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "HF_HUB_OFFLINE": "1",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MODEL_CACHE_DIR": str(tmp_path / "models"),
        "VISGATE_POLL_INTERVAL": "0.2",
        "VISGATE_HEALTH_POLL_SECONDS": "0.5",
        "LOG_LEVEL": "warning",
    }
    key = json.loads(run(["keys", "create", "--name", "dev", "--json"], env).stdout)
    proc = subprocess.Popen(
        [*VISGATE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    client_env = {**env, "VISGATE_URL": url, "VISGATE_API_KEY": key["api_key"]}
    try:
        yield client_env
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        _stop_local_workers(tmp_path / "data" / "local-endpoints.json")


def _stop_local_workers(state: Path) -> None:
    """Worker processes outlive the service on purpose (like Runpod endpoints): the test
    stops the ones it left so they do not run on after the suite."""
    if not state.exists():
        return
    for entry in json.loads(state.read_text()).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(entry["pid"]), signal.SIGTERM)


def test_readme_quickstart_end_to_end(service: dict[str, str]) -> None:
    deployed = run(["deploy", "lumen/3d-pipeline", "--wait", "--json"], service)
    assert deployed.returncode == 0, deployed.stderr
    dep = json.loads(deployed.stdout)
    assert dep["status"] == "ready"
    assert dep["endpoint_id"]
    statuses = [line["status"] for line in dep["logs"]]
    assert (
        statuses.index("validating") < statuses.index("creating_endpoint") < statuses.index("ready")
    )

    human = run(["deploy", "lumen/3d-pipeline", "--wait"], service)
    assert human.returncode == 0, human.stderr
    assert "ready" in human.stdout and "loading_model" in human.stderr

    job = run(["jobs", "run", dep["deployment_id"], "--text", "a small red fox", "--json"], service)
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout)
    assert result["status"] == "COMPLETED"
    names = [part["name"] for part in result["output"]["parts"]]
    assert "head" in names and "tail" in names

    table = run(["jobs", "run", dep["deployment_id"], "--text", "a small red fox"], service)
    assert table.returncode == 0 and "head" in table.stdout

    listed = json.loads(run(["list", "--json"], service).stdout)
    assert dep["deployment_id"] in [d["deployment_id"] for d in listed["items"]]
    logs = run(["logs", dep["deployment_id"]], service)
    assert "worker ready" in logs.stdout

    deleted = run(["delete", dep["deployment_id"], "--json"], service)
    assert deleted.returncode == 0, deleted.stderr
    for _ in range(100):
        status = json.loads(run(["status", dep["deployment_id"], "--json"], service).stdout)
        if status["status"] == "deleted":
            break
        time.sleep(0.2)
    assert status["status"] == "deleted"


def test_client_errors_print_type_and_message_not_a_traceback(service: dict[str, str]) -> None:
    missing = run(["status", "dep_0000000000000000"], service)
    assert missing.returncode == 1
    assert "DeploymentNotFoundError" in missing.stderr and "Traceback" not in missing.stderr
    bad = run(["deploy", "not-a-repo-id"], service)
    assert bad.returncode == 1 and "ValidationError" in bad.stderr
    nokey = run(["list"], {**service, "VISGATE_API_KEY": "wrong"})
    assert nokey.returncode == 1 and "UnauthorizedError" in nokey.stderr

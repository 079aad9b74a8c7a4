"""`LocalProvider` with real worker processes: the env they get, whose pids count as ours,
and how teardown stops them. The worker is the real `visgate_worker` on its demo models, or a
tiny stand-in module where a test needs a worker that misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.waiting import eventually
from visgate.providers.base import EndpointSpec
from visgate.providers.local import LocalProvider
from visgate.settings import load_settings

SECRETS = {
    "RUNPOD_API_KEY": "rpa_controlPlaneOnly0123",
    "INTERNAL_WEBHOOK_SECRET": "internal-secret-never-in-a-worker",
    "VISGATE_SECRET_KEY": "fernet-key-never-in-a-worker",
    "SOME_UNRELATED_TOKEN": "from-the-operators-shell",
}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def spec(name: str, **env: str) -> EndpointSpec:
    return EndpointSpec(
        name=name, image="local", env={"HF_MODEL_ID": "lumen/3d-pipeline", **env}, gpu_pools=[]
    )


@pytest.fixture
async def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalProvider]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("VISGATE_WORKER_MODULE", raising=False)
    settings = load_settings(VISGATE_DB_PATH=str(tmp_path / "data" / "visgate.db"))
    local = LocalProvider(settings)
    try:
        yield local
    finally:
        for entry in _state(local).values():  # whatever a failed test left running
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(entry["pid"]), signal.SIGKILL)
        await local.aclose()


def _state(local: LocalProvider) -> dict[str, dict]:
    if not local.state_path.exists():
        return {}
    return json.loads(local.state_path.read_text())  # type: ignore[no-any-return]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _running(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def _wait_idle(local: LocalProvider, endpoint_id: str) -> None:
    async def idle() -> bool:
        return (await local.endpoint_health(endpoint_id, api_key="")).workers.idle == 1

    await eventually(idle, within=90, what="the local worker becoming idle", ignoring=(Exception,))


async def test_real_worker_gets_only_the_template_env_and_serves_warmup_and_errors(
    provider: LocalProvider,
) -> None:
    ref = await provider.ensure_endpoint(
        spec("visgate-dep_envcheck", VISGATE_CALLBACK_TOKEN="cb-token-for-this-worker"),
        api_key="",
    )
    pid = int(_state(provider)["visgate-dep_envcheck"]["pid"])
    env = _environ(pid)
    for name in SECRETS:
        assert name not in env, f"{name} leaked into the worker"
    assert all(value not in "\0".join(env.values()) for value in SECRETS.values())
    assert env["HF_MODEL_ID"] == "lumen/3d-pipeline"
    assert env["VISGATE_CALLBACK_TOKEN"] == "cb-token-for-this-worker"
    assert env["MODEL_CACHE_DIR"] == str(provider.model_cache)
    assert env["PATH"] == os.environ["PATH"]

    await _wait_idle(provider, ref.endpoint_id)
    warm = await provider.submit_job(
        ref.endpoint_id, {"input": {"warmup": True}}, api_key="", sync=True
    )
    assert warm["status"] == "COMPLETED" and warm["output"] == {"warmup": "ok"}
    bad = await provider.submit_job(
        ref.endpoint_id, {"input": {"text": "!!!"}}, api_key="", sync=True
    )
    assert bad["status"] == "FAILED" and isinstance(bad["error"], str)
    error = json.loads(bad["error"])
    assert error["type"] == "ValidationError"
    assert [f["field"] for f in error["fields"]] == ["text"]

    await provider.teardown("visgate-dep_envcheck", api_key="")
    assert not _running(pid)
    assert await provider.find_endpoint("visgate-dep_envcheck", api_key="") is None


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not a worker (its own group, so a wrong killpg would hit only it)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("started", ["0123-boot:1", None])
async def test_a_reused_pid_is_not_ours_not_live_and_not_signalled(
    provider: LocalProvider, stranger: subprocess.Popen[bytes], started: str | None
) -> None:
    """After a reboot the state file may name a pid that now belongs to another process: a
    different start time (or, for an entry without one, not an adapter command line)."""
    entry = {
        "endpoint_id": "local-cafe",
        "template_id": "local-tpl-cafe",
        "pid": stranger.pid,
        "port": 9,
        "gpu_pools": [],
    }
    if started is not None:
        entry["started"] = started
    provider.data_dir.mkdir(parents=True, exist_ok=True)
    provider.state_path.write_text(json.dumps({"visgate-dep_old": entry}))
    assert await provider.find_endpoint("visgate-dep_old", api_key="") is None
    assert await provider.list_endpoints(api_key="") == []
    await provider.teardown("visgate-dep_old", api_key="")
    await asyncio.sleep(0.2)
    assert stranger.poll() is None, "teardown signalled a process that is not its worker"


STUBBORN_WORKER = """
import signal
import time

# A worker that SIGTERM does not end (say, stuck in a model load that holds the thread
# pool past uvicorn's shutdown): only SIGKILL stops it.
signal.signal(signal.SIGTERM, signal.SIG_IGN)


def startup():
    time.sleep(120)


def handle_job(job):
    return {"echo": job["input"]}
"""


async def test_teardown_escalates_to_sigkill_when_sigterm_is_not_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: LocalProvider
) -> None:
    worker_dir = tmp_path / "stubborn"
    worker_dir.mkdir()
    (worker_dir / "stubborn_worker.py").write_text(STUBBORN_WORKER)
    monkeypatch.setenv("VISGATE_WORKER_MODULE", "stubborn_worker")
    local = LocalProvider(
        load_settings(VISGATE_DB_PATH=str(tmp_path / "data" / "visgate.db")),
        worker_dir=worker_dir,
        term_grace_s=0.5,
    )
    try:
        ref = await local.ensure_endpoint(spec("visgate-dep_stubborn"), api_key="")
        pid = int(_state(local)["visgate-dep_stubborn"]["pid"])
        await eventually(  # serving /health while its start-up hangs
            lambda: local.endpoint_health(ref.endpoint_id, api_key=""),
            within=30,
            what="the stubborn worker answering /health",
            ignoring=(Exception,),
        )
        started = time.monotonic()
        await local.teardown("visgate-dep_stubborn", api_key="")
        assert not _running(pid)
        assert time.monotonic() - started < 5
    finally:
        await local.aclose()

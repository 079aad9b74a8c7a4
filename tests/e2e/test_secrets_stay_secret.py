"""A user's Runpod key and HF token, after a whole life (POST with both, ready by the
worker's callback, a job through the proxy, DELETE to deleted), appear nowhere a user or
operator can read: not in the database files (WAL included), the service log, any API
answer or SSE event, any webhook, or /metrics. Yet the fake Runpod got the key, the
worker's env got the token: they were used, only never shown."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.fakes.hub_seed import VALID_TOKEN
from tests.support.stack import run_stack

pytestmark = pytest.mark.slow

USER_KEY = "rp_user_private_8e7d6c5b4a39"


def test_user_secrets_never_leave_the_secret_store(tmp_path: Path) -> None:
    answers: list[bytes] = []

    def keep(response: httpx.Response) -> None:
        answers.append(response.read())

    with run_stack(tmp_path, LOG_LEVEL="debug") as stack:
        service = stack.start()
        stack.runpod.state.api_keys.add(USER_KEY)
        stack.runpod.state.job_handler = lambda job_input: {"echo": job_input}
        with stack.client() as client:
            client.event_hooks["response"] = [keep]
            dep_id = stack.deploy(client, user_runpod_key=USER_KEY, hf_token=VALID_TOKEN)
            ready = stack.wait_for(client, dep_id)
            assert ready["status"] == "ready", ready
            env = stack.runpod.state.endpoint_env(f"visgate-{dep_id}")
            assert env["HF_TOKEN"] == VALID_TOKEN  # the worker needs it, and got it

            job = client.post(f"/v1/deployments/{dep_id}/jobs/sync", json={"input": {"t": "x"}})
            assert job.status_code == 200 and job.json()["status"] == "COMPLETED", job.text
            client.get("/v1/deployments")
            client.get("/v1/deployments", params={"status": "ready"})
            stack.assert_ready_webhooks([dep_id])

            assert client.delete(f"/v1/deployments/{dep_id}").status_code == 204
            stack.wait_for(client, dep_id, {"deleted"})
            with connect_sse(client, "GET", f"/v1/deployments/{dep_id}/events") as source:
                answers += [event.data.encode() for event in source.iter_sse()]
            answers.append(httpx.get(f"{stack.url}/metrics").content)

        data_files = {p.name: p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
        assert "visgate.db-wal" in data_files  # read while the service still runs
        service.stop()
        log = service.log_text().encode()
        webhooks = [d.body + repr(d.headers).encode() for d in stack.receiver.deliveries]

    runpod_keys = {c.authorization for c in stack.runpod.state.calls}
    assert f"Bearer {USER_KEY}" in runpod_keys  # the key did its job
    assert answers and webhooks
    # The scan reads real content: the deployment itself is in the files and the log.
    assert any(dep_id.encode() in raw for raw in data_files.values())
    assert dep_id.encode() in log
    for secret in (USER_KEY.encode(), VALID_TOKEN.encode()):
        for name, raw in data_files.items():
            assert secret not in raw, f"{secret!r} in {name}"
        assert secret not in log
        assert not [a for a in answers if secret in a]
        assert not [w for w in webhooks if secret in w]

"""User secrets go to the secret store; the record, the database file, logs and answers
never hold them."""

from __future__ import annotations

from tests.integration.api.conftest import Api, ProbeRun
from tests.integration.api.log_probe import HF_TOKEN, RUNPOD_KEY


async def test_secrets_stay_out_of_records_files_and_responses(api: Api) -> None:
    resp = await api.post_deployment(user_runpod_key=RUNPOD_KEY, hf_token=HF_TOKEN)
    assert resp.status_code == 202
    dep_id = resp.json()["deployment_id"]
    answers = [
        resp.text,
        (await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())).text,
        (await api.client.get("/v1/deployments", headers=api.auth())).text,
        (await api.client.get("/metrics")).text,
    ]
    record = await api.services.store.deployments.get(dep_id)
    assert set(record.secret_refs) == {"runpod_api_key", "hf_token"}
    assert await api.services.secrets.get(record.secret_refs["runpod_api_key"]) == RUNPOD_KEY

    await api.services.store.backend.aclose()  # flush WAL into the file we grep
    files = [p for p in api.db_path.parent.rglob("*") if p.is_file()]
    assert files
    for secret in (RUNPOD_KEY, HF_TOKEN):
        for answer in answers:
            assert secret not in answer
        assert secret not in record.model_dump_json()
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def test_secrets_stay_out_of_the_logs(probe_run: ProbeRun) -> None:
    """Everything a real process wrote (debug level) during a session that handled both
    user secrets, the caller's API key and the worker's callback token."""
    result = probe_run.result
    assert result["statuses"] == [202, 200, 200, 200, 200, 204]
    events = [r.get("event") for r in probe_run.records]
    assert "deployment_created" in events  # the capture sees the service's log lines
    created = next(r for r in probe_run.records if r.get("event") == "deployment_created")
    assert created["deployment_id"] == result["deployment_id"]
    secrets = {
        "user_runpod_key": RUNPOD_KEY,
        "hf_token": HF_TOKEN,
        "api_key": result["api_key"],
        "webhook_secret": result["webhook_secret"],
        "callback_token": result["callback_token"],
    }
    for name, secret in secrets.items():
        assert secret not in probe_run.output, name
    for name in ("user_runpod_key", "hf_token"):
        for answer in result["answers"]:
            assert secrets[name] not in answer, name

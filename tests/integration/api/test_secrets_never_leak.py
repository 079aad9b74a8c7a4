"""User secrets go to the secret store; the record, the database file, logs and answers
never hold them."""

from __future__ import annotations

from tests.integration.api.conftest import Api

RUNPOD_KEY = "rpa_SECRET_runpod_key_0123456789"
HF_TOKEN = "hf_SECRET_token_abcdefghijklmnop"


async def test_secrets_stay_out_of_records_files_logs_and_responses(api: Api, capsys) -> None:
    resp = await api.post_deployment(user_runpod_key=RUNPOD_KEY, hf_token=HF_TOKEN)
    assert resp.status_code == 202
    dep_id = resp.json()["deployment_id"]
    answers = [
        resp.text,
        (await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())).text,
        (await api.client.get("/v1/deployments", headers=api.auth())).text,
        (await api.client.get("/metrics")).text,
    ]
    record = await api.services.store.get(dep_id)
    assert set(record.secret_refs) == {"runpod_api_key", "hf_token"}
    assert await api.services.secrets.get(record.secret_refs["runpod_api_key"]) == RUNPOD_KEY

    await api.services.store.backend.aclose()  # flush WAL into the file we grep
    files = [p for p in api.db_path.parent.rglob("*") if p.is_file()]
    assert files
    captured = capsys.readouterr()
    for secret in (RUNPOD_KEY, HF_TOKEN):
        for answer in answers:
            assert secret not in answer
        assert secret not in record.model_dump_json()
        assert secret not in captured.out + captured.err
        for path in files:
            assert secret.encode() not in path.read_bytes(), path

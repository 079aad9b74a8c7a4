"""Bad configuration stops start-up with a message naming the variable."""

from __future__ import annotations

import pytest

from visgate.settings import SettingsError, check_serving, load_settings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORE", "SECRETS", "PROVIDER", "RATE_LIMIT_PER_MINUTE", "WEBHOOK_RETRY_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("TENANT_MAX_DEPLOYMENTS", "TENANT_MAX_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.store.value == "sqlite" and s.secrets.value == "local" and s.provider.value == "runpod"
    assert s.rate_limit_per_minute == 100 and s.ready_timeout_seconds == 900
    assert s.webhook_retry_schedule == [5, 300, 1800, 7200, 18000, 36000]
    assert s.runpod_graphql_url == "https://api.runpod.io/graphql"
    assert s.runpod_api_base == "https://api.runpod.ai/v2"
    assert (s.tenant_max_deployments, s.tenant_max_workers) == (10, 5)


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("STORE", "postgres", "STORE"),
        ("RATE_LIMIT_PER_MINUTE", "lots", "RATE_LIMIT_PER_MINUTE"),
        ("RATE_LIMIT_PER_MINUTE", "0", "RATE_LIMIT_PER_MINUTE"),
        ("TENANT_MAX_DEPLOYMENTS", "0", "TENANT_MAX_DEPLOYMENTS"),
        ("TENANT_MAX_WORKERS", "-2", "TENANT_MAX_WORKERS"),
        ("WEBHOOK_RETRY_SCHEDULE", "5,soon", "WEBHOOK_RETRY_SCHEDULE"),
        ("PUBLIC_BASE_URL", "ftp://x", "PUBLIC_BASE_URL"),
        ("PROVIDER", "aws", "PROVIDER"),
        ("INTERNAL_WEBHOOK_SECRET", "changeme", "INTERNAL_WEBHOOK_SECRET"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=needle):
        load_settings()


def test_firestore_needs_a_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE", "firestore")
    monkeypatch.delenv("GCP_PROJECT_ID", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    with pytest.raises(SettingsError, match="GCP_PROJECT_ID"):
        load_settings()


def test_schedule_parses_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", " 1, 2.5 ,60")
    assert load_settings().webhook_retry_schedule == [1.0, 2.5, 60.0]


@pytest.mark.parametrize("value", [",", " , ,"])
def test_a_schedule_with_no_delay_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", value)
    with pytest.raises(SettingsError, match=r"WEBHOOK_RETRY_SCHEDULE.*no delay"):
        load_settings()


def test_sweep_interval_zero_turns_sweeping_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISGATE_SWEEP_INTERVAL", "0")
    assert load_settings().sweep_interval_seconds == 0
    monkeypatch.setenv("VISGATE_SWEEP_INTERVAL", "-1")
    with pytest.raises(SettingsError, match="VISGATE_SWEEP_INTERVAL"):
        load_settings()


def test_firestore_in_production_needs_one_shared_callback_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORE", "firestore")
    monkeypatch.setenv("GCP_PROJECT_ID", "p")
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("INTERNAL_WEBHOOK_SECRET", raising=False)
    settings = load_settings()  # `keys create` from a laptop needs no callback secret
    with pytest.raises(SettingsError, match="INTERNAL_WEBHOOK_SECRET"):
        check_serving(settings)
    monkeypatch.setenv("INTERNAL_WEBHOOK_SECRET", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")
    check_serving(load_settings())

"""Operator settings given as `sm://` references resolve through the real sync client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.cloud.secretmanager_v1 import SecretManagerServiceClient

from tests.fakes.secret_manager import PROJECT, FakeSecretManager
from visgate.domain.errors import (
    SecretNotFoundError,
    SecretPermissionError,
    SecretStoreUnavailableError,
)
from visgate.secrets.references import resolve_secret_reference, resolve_secret_references


@pytest.fixture
def client(fake_sm: FakeSecretManager) -> Iterator[SecretManagerServiceClient]:
    fake_sm.seed("visgate-runpod-api-key", b"rpa_operator\n")
    fake_sm.seed("visgate-internal-webhook-secret", b"whsec_internal")
    sync = fake_sm.sync_client()
    yield sync
    sync.transport.close()


@pytest.mark.parametrize(
    "reference",
    [
        f"sm://projects/{PROJECT}/secrets/visgate-runpod-api-key",
        f"sm://projects/{PROJECT}/secrets/visgate-runpod-api-key/versions/latest",
        f"projects/{PROJECT}/secrets/visgate-runpod-api-key/versions/1",
    ],
)
def test_a_reference_resolves_to_the_secret_without_its_newline(
    client: SecretManagerServiceClient, reference: str
) -> None:
    assert resolve_secret_reference(reference, client=client) == "rpa_operator"


@pytest.mark.parametrize(
    "plain", ["rpa_plainkey", "projects/x/secrets/y", "https://example.com/sm://x", ""]
)
def test_a_plain_value_is_returned_unchanged_without_calling_google(
    fake_sm: FakeSecretManager, client: SecretManagerServiceClient, plain: str
) -> None:
    assert resolve_secret_reference(plain, client=client) == plain
    assert fake_sm.calls == []


def test_several_settings_resolve_with_one_client(
    fake_sm: FakeSecretManager, client: SecretManagerServiceClient
) -> None:
    resolved = resolve_secret_references(
        {
            "RUNPOD_API_KEY": f"sm://projects/{PROJECT}/secrets/visgate-runpod-api-key",
            "INTERNAL_WEBHOOK_SECRET": f"sm://projects/{PROJECT}/secrets/visgate-internal-webhook-secret",
            "VISGATE_SECRET_KEY": None,
            "OTHER": "plain",
        },
        client=client,
    )
    assert resolved == {
        "RUNPOD_API_KEY": "rpa_operator",
        "INTERNAL_WEBHOOK_SECRET": "whsec_internal",
        "VISGATE_SECRET_KEY": None,
        "OTHER": "plain",
    }
    assert fake_sm.count("AccessSecretVersion") == 2


def test_a_missing_secret_is_not_found(client: SecretManagerServiceClient) -> None:
    with pytest.raises(SecretNotFoundError, match="visgate-nope"):
        resolve_secret_reference(f"sm://projects/{PROJECT}/secrets/visgate-nope", client=client)


def test_permission_denied_names_the_accessor_role(
    fake_sm: FakeSecretManager, client: SecretManagerServiceClient
) -> None:
    fake_sm.deny(f"projects/{PROJECT}/secrets/visgate-runpod-api-key")
    with pytest.raises(SecretPermissionError, match=r"roles/secretmanager\.secretAccessor"):
        resolve_secret_reference(
            f"sm://projects/{PROJECT}/secrets/visgate-runpod-api-key", client=client
        )


def test_unavailable_is_retried_then_reported(
    fake_sm: FakeSecretManager, client: SecretManagerServiceClient
) -> None:
    ref = f"sm://projects/{PROJECT}/secrets/visgate-runpod-api-key"
    fake_sm.fail_next(1)
    assert resolve_secret_reference(ref, client=client, backoff_s=0) == "rpa_operator"
    fake_sm.fail_next(3)
    with pytest.raises(SecretStoreUnavailableError):
        resolve_secret_reference(ref, client=client, attempts=3, backoff_s=0)
    assert fake_sm.count("AccessSecretVersion") == 5

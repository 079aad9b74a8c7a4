"""Secret Manager backend against the gRPC fake: error mapping, retries, cache, labels, paging."""

from __future__ import annotations

import grpc
import pytest

from tests.fakes.secret_manager import PROJECT, PROJECT_NUMBER, FakeSecretManager
from tests.integration.secrets.conftest import open_sm_store
from tests.support.clock import ManualClock
from visgate.domain.errors import (
    SecretNotFoundError,
    SecretPermissionError,
    SecretStoreError,
    SecretStoreUnavailableError,
)
from visgate.secrets.secret_manager import SecretManagerStore

DEP = "dep_0123456789abcdef"


async def test_each_secret_is_labelled_with_its_deployment(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    ref = await sm_store.put(DEP, "runpod_api_key", "rpa_x")
    assert ref == f"sm://projects/{PROJECT}/secrets/visgate-{DEP}-runpod_api_key/versions/latest"
    secret = fake_sm.secrets[f"visgate-{DEP}-runpod_api_key"]
    assert secret.labels == {"visgate_deployment": DEP, "managed_by": "visgate"}


async def test_permission_denied_on_read_names_the_missing_role(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    ref = await sm_store.put(DEP, "hf_token", "hf_value")
    fake_sm.deny(f"projects/{PROJECT}/secrets/visgate-{DEP}-hf_token")
    async with open_sm_store(fake_sm) as fresh:  # no cached value
        with pytest.raises(SecretPermissionError) as caught:
            await fresh.get(ref)
    message = str(caught.value)
    assert "roles/secretmanager.secretAccessor" in message and "hf_value" not in message


async def test_permission_denied_on_create_names_the_create_permission(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    fake_sm.deny(f"projects/{PROJECT_NUMBER}")
    with pytest.raises(SecretPermissionError, match=r"secretmanager\.secrets\.create"):
        await sm_store.put(DEP, "hf_token", "hf_value")
    assert fake_sm.count("CreateSecret") == 1  # a permission error is not retried


async def test_unavailable_then_ok_is_retried(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    ref = await sm_store.put(DEP, "hf_token", "hf_value")
    async with open_sm_store(fake_sm) as fresh:
        fake_sm.fail_next(2)
        assert await fresh.get(ref) == "hf_value"
    assert fake_sm.count("AccessSecretVersion") == 3


async def test_deadline_exceeded_is_retried_too(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    fake_sm.fail_next(1, grpc.StatusCode.DEADLINE_EXCEEDED)
    ref = await sm_store.put(DEP, "hf_token", "hf_value")
    assert await sm_store.get(ref) == "hf_value"
    assert fake_sm.count("CreateSecret") == 2


async def test_unavailable_forever_gives_a_transient_error(fake_sm: FakeSecretManager) -> None:
    async with open_sm_store(fake_sm, attempts=4) as store:
        fake_sm.fail_next(100)
        with pytest.raises(SecretStoreUnavailableError) as caught:
            await store.get(f"sm://projects/{PROJECT}/secrets/visgate-{DEP}-x/versions/latest")
    assert caught.value.transient
    assert fake_sm.count("AccessSecretVersion") == 4


async def test_reads_are_cached_briefly(fake_sm: FakeSecretManager) -> None:
    async with open_sm_store(fake_sm) as writer:
        ref = await writer.put(DEP, "hf_token", "hf_value")
    clock = ManualClock()
    async with open_sm_store(fake_sm, cache_ttl_s=30, clock=clock) as reader:
        for _ in range(5):
            assert await reader.get(ref) == "hf_value"
            clock.advance(5)
        assert fake_sm.count("AccessSecretVersion") == 1
        clock.advance(10)
        assert await reader.get(ref) == "hf_value"
        assert fake_sm.count("AccessSecretVersion") == 2


async def test_delete_for_forgets_cached_values(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    ref = await sm_store.put(DEP, "hf_token", "hf_value")
    assert await sm_store.get(ref) == "hf_value"
    await sm_store.delete_for(DEP)
    with pytest.raises(SecretNotFoundError):
        await sm_store.get(ref)


async def test_delete_for_follows_every_page_and_keeps_unlabelled_secrets(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    names = [f"name_{i}" for i in range(5)]  # the fake pages by 2
    for name in names:
        await sm_store.put(DEP, name, "v")
    fake_sm.seed("operator-secret", b"keep me")
    await sm_store.delete_for(DEP)
    assert set(fake_sm.secrets) == {"operator-secret"}
    assert fake_sm.count("ListSecrets") == 3


async def test_delete_for_treats_already_gone_as_done(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    await sm_store.put(DEP, "hf_token", "v")
    await sm_store.put(DEP, "runpod_api_key", "v")
    fake_sm.fail_next(1, grpc.StatusCode.NOT_FOUND, method="DeleteSecret")
    await sm_store.delete_for(DEP)  # no error
    assert fake_sm.count("DeleteSecret") == 2


async def test_a_put_that_failed_after_create_can_be_retried(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore
) -> None:
    fake_sm.fail_next(3, grpc.StatusCode.UNAVAILABLE, method="AddSecretVersion")  # = attempts
    with pytest.raises(SecretStoreUnavailableError):
        await sm_store.put(DEP, "hf_token", "hf_value")
    # The secret exists without a version: reading is "not found"; a retried put completes it.
    ref = f"sm://projects/{PROJECT}/secrets/visgate-{DEP}-hf_token/versions/latest"
    with pytest.raises(SecretNotFoundError):
        await sm_store.get(ref)
    assert await sm_store.put(DEP, "hf_token", "hf_value") == ref
    assert await sm_store.get(ref) == "hf_value"
    assert fake_sm.count("CreateSecret") == 2  # the second answered ALREADY_EXISTS


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, SecretPermissionError),
        (grpc.StatusCode.INVALID_ARGUMENT, SecretStoreError),
        (grpc.StatusCode.INTERNAL, SecretStoreError),
    ],
)
async def test_other_failures_are_permanent_errors_not_retried(
    fake_sm: FakeSecretManager, sm_store: SecretManagerStore, code: grpc.StatusCode, error: type
) -> None:
    fake_sm.fail_next(1, code)
    with pytest.raises(error) as caught:
        await sm_store.get(f"sm://projects/{PROJECT}/secrets/visgate-{DEP}-x/versions/latest")
    assert not caught.value.transient
    assert fake_sm.count("AccessSecretVersion") == 1

"""The rules every secret store keeps (secrets/base.py), run on `local` and `secret-manager`."""

from __future__ import annotations

from typing import Any

import pytest

from visgate.domain.errors import SecretNotFoundError
from visgate.secrets.base import SecretStore

DEP_A = "dep_0123456789abcdef"
DEP_B = "dep_fedcba9876543210"
TRICKY = "rpa_\"double\" 'single' ünïcødé 🔑 back\\slash, comma=equals\nsecond line"


async def test_is_a_secret_store(secret_store: Any) -> None:
    assert isinstance(secret_store, SecretStore)


async def test_put_then_get_returns_the_exact_value(secret_store: Any) -> None:
    ref = await secret_store.put(DEP_A, "runpod_api_key", TRICKY)
    assert isinstance(ref, str) and DEP_A in ref
    assert await secret_store.get(ref) == TRICKY


async def test_each_name_and_deployment_keeps_its_own_value(secret_store: Any) -> None:
    refs = {
        (dep, name): await secret_store.put(dep, name, f"{dep}:{name}")
        for dep in (DEP_A, DEP_B)
        for name in ("runpod_api_key", "hf_token")
    }
    assert len(set(refs.values())) == 4
    for (dep, name), ref in refs.items():
        assert await secret_store.get(ref) == f"{dep}:{name}"


async def test_put_again_replaces_the_value(secret_store: Any) -> None:
    first = await secret_store.put(DEP_A, "hf_token", "hf_old")
    second = await secret_store.put(DEP_A, "hf_token", "hf_new")
    assert await secret_store.get(second) == "hf_new"
    assert await secret_store.get(first) == "hf_new"


async def test_get_of_an_unknown_ref_is_not_found(secret_store: Any) -> None:
    ref = await secret_store.put(DEP_A, "runpod_api_key", "rpa_value")
    unknown = ref.replace("runpod_api_key", "never_stored")
    with pytest.raises(SecretNotFoundError):
        await secret_store.get(unknown)


@pytest.mark.parametrize("foreign", ["", "garbage", "local:", "sm://projects/p", "s3://x/y"])
async def test_get_of_a_malformed_or_foreign_ref_is_not_found(
    secret_store: Any, foreign: str
) -> None:
    with pytest.raises(SecretNotFoundError):
        await secret_store.get(foreign)


async def test_delete_for_removes_every_secret_of_the_deployment_only(secret_store: Any) -> None:
    mine = [await secret_store.put(DEP_A, n, f"a-{n}") for n in ("runpod_api_key", "hf_token")]
    other = await secret_store.put(DEP_B, "runpod_api_key", "b-value")

    await secret_store.delete_for(DEP_A)

    for ref in mine:
        with pytest.raises(SecretNotFoundError):
            await secret_store.get(ref)
    assert await secret_store.get(other) == "b-value"


async def test_delete_for_is_repeatable_and_fine_with_nothing_stored(secret_store: Any) -> None:
    await secret_store.put(DEP_A, "hf_token", "hf_x")
    await secret_store.delete_for(DEP_A)
    await secret_store.delete_for(DEP_A)
    await secret_store.delete_for("dep_0000000000000000")


async def test_a_deleted_deployment_can_store_again(secret_store: Any) -> None:
    await secret_store.put(DEP_A, "hf_token", "hf_before")
    await secret_store.delete_for(DEP_A)
    ref = await secret_store.put(DEP_A, "hf_token", "hf_after")
    assert await secret_store.get(ref) == "hf_after"


async def test_values_never_show_in_repr_or_errors(secret_store: Any) -> None:
    value = "rpa_SUPERSECRET_0123456789"
    ref = await secret_store.put(DEP_A, "runpod_api_key", value)
    await secret_store.get(ref)
    assert value not in repr(secret_store) and value not in str(secret_store)
    await secret_store.delete_for(DEP_A)
    with pytest.raises(SecretNotFoundError) as caught:
        await secret_store.get(ref)
    assert value not in str(caught.value) and value not in repr(caught.value)


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        ("dep/../x", "hf_token"),
        (DEP_A, "a/b"),
        ("Dep_UPPER", "hf_token"),
        (DEP_A, ""),
        ("x" * 64, "n"),
    ],
)
async def test_ids_no_backend_can_store_are_refused(
    secret_store: Any, owner: str, name: str
) -> None:
    with pytest.raises(ValueError):
        await secret_store.put(owner, name, "value")

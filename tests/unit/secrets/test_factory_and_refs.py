"""`SECRETS=` selection and the shape of operator secret references."""

from __future__ import annotations

from pathlib import Path

import pytest

from visgate.domain.errors import SecretStoreError
from visgate.secrets.base import SecretStore
from visgate.secrets.factory import build_secret_store
from visgate.secrets.local import LocalSecretStore
from visgate.secrets.references import reference_name
from visgate.secrets.secret_manager import SecretManagerStore


async def test_local_keeps_its_file_in_the_data_dir(tmp_path: Path) -> None:
    store = build_secret_store("local", data_dir=tmp_path / "data", local_key=None, project_id=None)
    assert isinstance(store, LocalSecretStore) and isinstance(store, SecretStore)
    ref = await store.put("dep_0123456789abcdef", "hf_token", "hf_value")
    assert await store.get(ref) == "hf_value"
    assert (tmp_path / "data" / "secrets.db").exists()
    assert (tmp_path / "data" / "secret.key").exists()


def test_secret_manager_is_built_without_touching_google() -> None:
    store = build_secret_store(
        "secret-manager", data_dir=Path("/nonexistent"), local_key=None, project_id="my-proj"
    )
    assert isinstance(store, SecretManagerStore) and isinstance(store, SecretStore)
    assert "my-proj" in repr(store)


@pytest.mark.parametrize("project", [None, ""])
def test_secret_manager_without_a_project_says_what_is_missing(project: str | None) -> None:
    with pytest.raises(SecretStoreError, match="GCP_PROJECT_ID"):
        build_secret_store(
            "secret-manager", data_dir=Path("/tmp"), local_key=None, project_id=project
        )


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(SecretStoreError, match="local or secret-manager"):
        build_secret_store("vault", data_dir=Path("/tmp"), local_key=None, project_id=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sm://projects/p/secrets/s", "projects/p/secrets/s/versions/latest"),
        ("sm://projects/p/secrets/s/versions/3", "projects/p/secrets/s/versions/3"),
        ("projects/p/secrets/s/versions/latest", "projects/p/secrets/s/versions/latest"),
        ("projects/p/secrets/s", None),  # bare form needs the version: could be a real value
        ("rpa_ABC123", None),
        ("sm://projects/p", None),
        ("sm://projects/p/secrets/s/versions/1/extra", None),
        (" sm://projects/p/secrets/s", None),
    ],
)
def test_reference_forms(value: str, expected: str | None) -> None:
    assert reference_name(value) == expected

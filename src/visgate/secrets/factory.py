"""Pick the secret store named by `SECRETS`; the only place that knows both backends."""

from __future__ import annotations

from pathlib import Path

from visgate.domain.errors import SecretStoreError
from visgate.secrets.base import SecretStore
from visgate.secrets.local import LocalSecretStore

LOCAL_DB_NAME = "secrets.db"


def build_secret_store(
    kind: str,
    *,
    data_dir: Path,
    local_key: str | None,
    project_id: str | None,
) -> SecretStore:
    """`local` keeps `<data_dir>/secrets.db` (key file beside it unless `local_key`);
    `secret-manager` needs the Google Cloud project."""
    if kind == "local":
        return LocalSecretStore(Path(data_dir) / LOCAL_DB_NAME, local_key)
    if kind == "secret-manager":
        if not project_id:
            raise SecretStoreError(
                "SECRETS=secret-manager needs GCP_PROJECT_ID (the project holding the secrets)"
            )
        # Imported here: the Google client stack (gRPC, api_core) loads only for this backend.
        from visgate.secrets.secret_manager import SecretManagerStore

        return SecretManagerStore(project_id)
    raise SecretStoreError(f"SECRETS={kind!r} is not a secret store: use local or secret-manager")

"""Build the configured store from settings."""

from __future__ import annotations

from visgate.settings import Settings, StoreKind
from visgate.store.repository import DeploymentStore


def build_store(settings: Settings) -> DeploymentStore:
    if settings.store is StoreKind.firestore:
        from visgate.store.firestore import FirestoreBackend

        project = settings.gcp_project_id or "visgate-local"
        return DeploymentStore(
            FirestoreBackend(project=project, prefix=settings.firestore_collection_prefix)
        )
    from visgate.store.sqlite import SqliteBackend

    return DeploymentStore(SqliteBackend(settings.db_path))

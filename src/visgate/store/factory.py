"""Build the configured store from settings."""

from __future__ import annotations

from visgate.settings import Settings, StoreKind
from visgate.store.repositories import Store
from visgate.store.sqlite import SqliteBackend


def build_store(settings: Settings) -> Store:
    if settings.store is StoreKind.firestore:
        # Imported here: google-cloud-firestore loads only where Firestore is configured.
        from visgate.store.firestore import FirestoreBackend

        project = settings.gcp_project_id or "visgate-local"
        return Store(FirestoreBackend(project=project, prefix=settings.firestore_collection_prefix))
    return Store(SqliteBackend(settings.db_path))

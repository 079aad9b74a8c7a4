"""`ApiKeyRepository`: API keys, found by hash (each request) and by name (the operator).

A key document's id is the SHA-256 of the key, so authenticating a request is one read. A
name is held by a small name document whose id is derived from the name: creating a key
inserts it first, and the backend's insert-if-absent lets exactly one of two racing
creates hold a name. Looking a key up by name reads that document, whatever the number of
keys. Keys stored without a name document are found by a query on their `name` field,
and given one the first time they are found.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from visgate.domain.errors import ConflictError, StaleWriteError
from visgate.domain.records import ApiKey
from visgate.store.base import DocumentBackend
from visgate.store.cursors import every, listed_doc

API_KEYS = "api_keys"
API_KEY_NAMES = "api_key_names"

# A name document whose key was never written is left by a create that died between the
# two inserts; younger than this it may still belong to a create in progress.
_NAME_CLAIM_GRACE_S = 60.0


def name_id(name: str) -> str:
    """Names may hold any character; document ids may not."""
    return hashlib.sha256(name.encode()).hexdigest()


def _name_taken(name: str) -> ConflictError:
    return ConflictError(f"an API key named {name!r} exists already")


class ApiKeyRepository:
    def __init__(self, backend: DocumentBackend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    async def add(self, key: ApiKey) -> ApiKey:
        """Store `key` under its name; `ConflictError` when another key holds the name."""
        if await self._unindexed_by_name(key.name) is not None:
            raise _name_taken(key.name)
        await self._claim_name(key)
        try:
            stored = await self.backend.insert(API_KEYS, listed_doc(key))
        except BaseException:
            await self.backend.delete(API_KEY_NAMES, name_id(key.name))
            raise
        return ApiKey.model_validate(stored)

    async def _claim_name(self, key: ApiKey) -> None:
        """Insert the name document; a taken name raises `ConflictError`, unless the key it
        names was never written and the claim is past its grace period (its create died)."""
        doc = {"id": name_id(key.name), "name": key.name, "key_id": key.id}
        try:
            await self.backend.insert(API_KEY_NAMES, {**doc, "created_at": self.clock()})
            return
        except ConflictError:
            held = await self.backend.get(API_KEY_NAMES, doc["id"])
        if (
            held is None
            or self.clock() - float(held.get("created_at") or 0.0) < _NAME_CLAIM_GRACE_S
            or await self.by_hash(held["key_id"]) is not None
        ):
            raise _name_taken(key.name)
        try:
            await self.backend.replace(
                API_KEY_NAMES,
                {**doc, "created_at": self.clock()},
                expected_version=int(held["version"]),
            )
        except StaleWriteError:
            raise _name_taken(key.name) from None

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        doc = await self.backend.get(API_KEYS, key_hash)
        return ApiKey.model_validate(doc) if doc else None

    async def by_name(self, name: str) -> ApiKey | None:
        held = await self.backend.get(API_KEY_NAMES, name_id(name))
        if held is not None:
            return await self.by_hash(held["key_id"])
        return await self._unindexed_by_name(name)

    async def _unindexed_by_name(self, name: str) -> ApiKey | None:
        """A key stored without a name document, found by its `name` field; it gets its
        name document now, so the next look-up is a plain read."""
        docs = await self.backend.query(API_KEYS, where={"name": name}, limit=1)
        if not docs:
            return None
        key = ApiKey.model_validate(docs[0])
        doc = {"id": name_id(name), "name": name, "key_id": key.id, "created_at": key.created_at}
        try:
            await self.backend.insert(API_KEY_NAMES, doc)
        except ConflictError:
            pass  # found and indexed by another caller meanwhile
        return key

    async def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        return [ApiKey.model_validate(doc) async for doc in every(self.backend, API_KEYS, {})]

    async def revoke(self, name: str) -> ApiKey | None:
        """Revoke the key named `name` (a revoked one is returned as it is); None if none."""
        key = await self.by_name(name)
        if key is None or key.revoked_at is not None:
            return key
        key.revoked_at = self.clock()
        stored = await self.backend.replace(API_KEYS, listed_doc(key), expected_version=key.version)
        return ApiKey.model_validate(stored)

"""Firestore's side of `DocumentBackend.transaction`: an optimistic transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from visgate.domain.errors import ConflictError

if TYPE_CHECKING:
    from visgate.store.firestore import FirestoreBackend

# What a write conditioned on `last_update_time` answers when the document changed or went.
CHANGED = (gexc.FailedPrecondition, gexc.NotFound)


class Contended(Exception):
    """A document this transaction read was written before it committed: run it again."""


_UNREAD = object()


class FirestoreTx:
    """An optimistic `Transaction`: reads are plain reads that note each document's update
    time (or its absence); writes are kept and committed as one atomic batch in which every
    write is conditioned on its document being as read (unchanged, or still absent). A
    document read but not written is not checked, so the functions using this write every
    document their decision rests on (store/quotas.py and store/idempotency.py do).
    Optimistic because Firestore transactions lock what they read, and under contention
    (a tenant's burst of POSTs on one usage document) the emulator aborts them for minutes."""

    def __init__(self, backend: FirestoreBackend) -> None:
        self._backend = backend
        self._read: dict[str, Any] = {}  # path -> update time, None when absent
        self._writes: list[tuple[str, Any, dict[str, Any] | None]] = []

    def _ref(self, kind: str, doc_id: str) -> Any:
        return self._backend._collection(kind).document(doc_id)

    def _note(self, snap: Any) -> None:
        seen = snap.update_time if snap.exists else None
        if self._read.setdefault(snap.reference.path, seen) != seen:
            raise Contended  # changed between two reads of this transaction

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        snap = await self._backend._guard(self._ref(kind, doc_id).get())
        self._note(snap)
        return self._backend._from_store(snap) if snap.exists else None

    async def query(self, kind: str, *, where: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        q = self._backend._collection(kind)
        for name, value in where.items():
            q = q.where(filter=FieldFilter(name, "==", value))
        q = q.order_by("sort_key", direction=firestore.Query.DESCENDING).limit(limit)
        snaps = await self._backend._guard(q.get())
        for snap in snaps:
            self._note(snap)
        return [self._backend._from_store(snap) for snap in snaps]

    def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        new = {**doc, "version": 1}
        self._writes.append(
            ("create", self._ref(kind, new["id"]), self._backend._to_store(kind, new))
        )
        return new

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        new = {**doc, "version": int(doc.get("version") or 0) + 1}
        self._writes.append(("put", self._ref(kind, new["id"]), self._backend._to_store(kind, new)))
        return new

    def delete(self, kind: str, doc_id: str) -> None:
        self._writes.append(("delete", self._ref(kind, doc_id), None))

    async def commit(self) -> None:
        if not self._writes:
            return
        client = self._backend._client
        batch = client.batch()
        unchecked: list[Any] = []  # inserts of documents not read absent here
        for op, ref, data in self._writes:
            seen = self._read.get(ref.path, _UNREAD)
            read = seen is not None and seen is not _UNREAD
            option = client.write_option(last_update_time=seen) if read else None
            if op == "delete":
                if seen is not None:  # read absent: nothing to delete
                    batch.delete(ref, option=option)
            elif op == "create" or seen is None:
                if seen is not None:
                    unchecked.append(ref)
                batch.create(ref, data)
            elif seen is _UNREAD:
                batch.set(ref, data)
            else:
                batch.update(ref, data, option=option)
        try:
            await self._backend._guard(batch.commit(), passthrough=(*CHANGED, gexc.AlreadyExists))
        except gexc.AlreadyExists as exc:
            for ref in unchecked:  # the batch does not say which document was there
                if (await self._backend._guard(ref.get())).exists:
                    raise ConflictError(f"{ref.path} already exists") from exc
            raise Contended from exc
        except CHANGED as exc:
            raise Contended from exc

"""Listing order and the opaque cursors that page through it.

Every listed record carries a `sort_key` (its creation time, then its id), so a page ends at
a key that no other record shares and the next page starts right after it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, Protocol

from visgate.domain.errors import ValidationError
from visgate.store.base import DocumentBackend


class Listed(Protocol):
    """A record kept in listing order: it has an id and a creation time."""

    id: str
    created_at: float

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def sort_key(created_at: float, doc_id: str) -> str:
    """Newest-first listing order that never ties: zero-padded time, then the id."""
    return f"{created_at:017.6f}|{doc_id}"


def listed_doc(record: Listed) -> dict[str, Any]:
    """The record as a document, with the `sort_key` that places it in listings."""
    return {**record.model_dump(mode="json"), "sort_key": sort_key(record.created_at, record.id)}


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The `sort_key` a cursor stands for; `ValidationError` (a 422) for one not issued here."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        key = ""
    if "|" not in key:
        raise ValidationError(
            "cursor is not one this service issued",
            [{"field": "cursor", "message": "invalid cursor"}],
        )
    return key


async def every(
    backend: DocumentBackend, kind: str, where: dict[str, Any], *, page: int = 500
) -> AsyncIterator[dict[str, Any]]:
    """Every matching document, newest first, read a page at a time so no count is capped."""
    after = None
    while True:
        docs = await backend.query(kind, where=where, limit=page, after=after)
        for doc in docs:
            yield doc
        if len(docs) < page:
            return
        after = docs[-1]["sort_key"]

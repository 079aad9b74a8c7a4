"""SQLite backend: the embedded default, one file, safe for several processes.

WAL lets readers run beside the one writer. Keyed reads and one-row writes run on the event
loop and anything that could wait (a busy file, a scan) on one thread per process
(sqlite_runner.py says why). A claim is a single `UPDATE ... RETURNING`, atomic under
SQLite's write lock; every write is one transaction, and `transaction` runs a function's
reads and writes of several documents inside one `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from visgate.domain.errors import (
    ConflictError,
    LeaseLostError,
    StaleWriteError,
)
from visgate.store.base import LEASE_FIELDS, Transaction
from visgate.store.sqlite_runner import SqliteRunner

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT,
    status TEXT,
    sort_key TEXT,
    due_at REAL,
    expires_at REAL,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at REAL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_documents_list ON documents (kind, tenant, sort_key);
CREATE INDEX IF NOT EXISTS ix_documents_list_status ON documents (kind, tenant, status, sort_key);
CREATE INDEX IF NOT EXISTS ix_documents_due ON documents (kind, due_at) WHERE due_at IS NOT NULL;
"""

_INDEXED = ("tenant", "status", "sort_key", "due_at", "expires_at")
# Fields a query may match on: indexed columns, and `name` (API keys stored without a name
# document), read from the body within the kind's rows.
_QUERYABLE = {"tenant": "tenant", "status": "status", "name": "json_extract(body, '$.name')"}
_COLUMNS = "id, body, version, due_at, lease_owner, lease_token, lease_expires_at"
T = TypeVar("T")


def _row_to_doc(row: sqlite3.Row) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(row["body"])
    doc["version"] = row["version"]
    doc["due_at"] = row["due_at"]
    for name in LEASE_FIELDS:
        doc[name] = row[name]
    return doc


def _body(doc: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in doc.items() if k not in LEASE_FIELDS and k != "version"},
        separators=(",", ":"),
    )


def _write_row(conn: sqlite3.Connection, verb: str, kind: str, doc: dict[str, Any]) -> None:
    """`verb` (INSERT, or INSERT OR REPLACE) one document whole, at its `version`."""
    conn.execute(
        f"{verb} INTO documents (kind, id, tenant, status, sort_key, due_at, expires_at,"
        " lease_owner, lease_token, lease_expires_at, version, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind,
            doc["id"],
            *(doc.get(name) for name in _INDEXED),
            *(doc.get(name) for name in LEASE_FIELDS),
            doc["version"],
            _body(doc),
        ),
    )


def _insert(conn: sqlite3.Connection, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    new = {**doc, "version": 1}
    try:
        _write_row(conn, "INSERT", kind, new)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{kind} {new['id']} already exists") from exc
    return new


def _get(conn: sqlite3.Connection, kind: str, doc_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)
    ).fetchone()
    return _row_to_doc(row) if row else None


def _query(
    conn: sqlite3.Connection, kind: str, where: dict[str, Any], limit: int, after: str | None
) -> list[dict[str, Any]]:
    unknown = set(where) - set(_QUERYABLE)
    if unknown:
        raise ValueError(f"cannot query on {sorted(unknown)}")
    clauses = ["kind = ?"]
    params: list[Any] = [kind]
    for name, value in where.items():
        clauses.append(f"{_QUERYABLE[name]} = ?")
        params.append(value)
    if after is not None:
        clauses.append("sort_key < ?")
        params.append(after)
    params.append(limit)
    sql = (
        f"SELECT {_COLUMNS} FROM documents WHERE {' AND '.join(clauses)}"
        " ORDER BY sort_key DESC LIMIT ?"
    )
    return [_row_to_doc(r) for r in conn.execute(sql, params).fetchall()]


class _SqliteTx:
    """A `Transaction` on a connection inside `BEGIN IMMEDIATE`: every call runs at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        return _get(self.conn, kind, doc_id)

    async def query(self, kind: str, *, where: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return _query(self.conn, kind, where, limit, None)

    def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        return _insert(self.conn, kind, doc)

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        new = {**doc, "version": int(doc.get("version") or 0) + 1}
        _write_row(self.conn, "INSERT OR REPLACE", kind, new)
        return new

    def delete(self, kind: str, doc_id: str) -> None:
        self.conn.execute("DELETE FROM documents WHERE kind = ? AND id = ?", (kind, doc_id))


def _run_at_once(coro: Coroutine[Any, Any, T]) -> T:
    """Run a transaction function to its end in one step. Its awaits are only the
    transaction's reads, which finish at once, so it never suspends; one that does awaited
    something else, which would hold the write lock across the event loop, and is refused."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SQLite transaction function awaited something besides its reads")


class SqliteBackend:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.runner = SqliteRunner(self.path, _SCHEMA)

    async def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        return await self.runner.run(lambda conn: _insert(conn, kind, doc), write=True)

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        return await self.runner.run(lambda conn: _get(conn, kind, doc_id), write=False)

    async def replace(
        self,
        kind: str,
        doc: dict[str, Any],
        *,
        expected_version: int,
        lease_token: str | None = None,
    ) -> dict[str, Any]:
        doc_id = doc["id"]
        sets = ", ".join(f"{name} = ?" for name in _INDEXED)
        params: list[Any] = [doc.get(name) for name in _INDEXED]
        if lease_token is not None:
            sets += ", " + ", ".join(f"{name} = ?" for name in LEASE_FIELDS)
            params += [doc.get(name) for name in LEASE_FIELDS]
        where = "kind = ? AND id = ? AND version = ?"
        params += [_body(doc), kind, doc_id, expected_version]
        if lease_token is not None:
            where += " AND lease_token = ?"
            params.append(lease_token)

        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            row = conn.execute(
                f"UPDATE documents SET {sets}, body = ?, version = version + 1"
                f" WHERE {where} RETURNING {_COLUMNS}",
                params,
            ).fetchone()
            if row is not None:
                return _row_to_doc(row)
            current = conn.execute(
                "SELECT version, lease_token FROM documents WHERE kind = ? AND id = ?",
                (kind, doc_id),
            ).fetchone()
            if current is None:
                raise StaleWriteError(f"{kind} {doc_id} no longer exists")
            if lease_token is not None and current["lease_token"] != lease_token:
                raise LeaseLostError(f"lease on {kind} {doc_id} was lost")
            raise StaleWriteError(f"{kind} {doc_id} changed since it was read")

        return await self.runner.run(op, write=True)

    async def delete(self, kind: str, doc_id: str) -> None:
        await self.runner.run(
            lambda conn: conn.execute(
                "DELETE FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)
            ),
            write=True,
        )

    async def query(
        self, kind: str, *, where: dict[str, Any], limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        return await self.runner.run(
            lambda conn: _query(conn, kind, where, limit, after), write=False
        )

    async def claim_due(
        self, kind: str, *, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[dict[str, Any]]:
        expires = now + lease_seconds
        token = secrets.token_hex(8)

        def op(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "UPDATE documents SET lease_owner = ?, lease_token = ? || ':' || id,"
                " lease_expires_at = ?, due_at = ?, version = version + 1"
                " WHERE kind = ? AND id IN ("
                "   SELECT id FROM documents WHERE kind = ? AND due_at <= ?"
                "   AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
                "   ORDER BY due_at LIMIT ?)"
                f" RETURNING {_COLUMNS}",
                (owner, token, expires, expires, kind, kind, now, now, limit),
            ).fetchall()
            return [_row_to_doc(r) for r in rows]

        return await self.runner.run(op, write=True)

    async def extend_lease(
        self, kind: str, doc_id: str, *, lease_token: str, expires_at: float
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE documents SET lease_expires_at = ?, due_at = MAX(COALESCE(due_at, 0), ?)"
                " WHERE kind = ? AND id = ? AND lease_token = ?",
                (expires_at, expires_at, kind, doc_id, lease_token),
            )
            return cur.rowcount == 1

        return await self.runner.run(op, write=True)

    async def increment(self, kind: str, doc_id: str, *, now: float, expires_at: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "INSERT INTO documents (kind, id, expires_at, version, body)"
                " VALUES (?, ?, ?, 1, '{}')"
                " ON CONFLICT (kind, id) DO UPDATE SET"
                "   version = CASE WHEN expires_at <= ? THEN 1 ELSE version + 1 END,"
                "   expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at"
                "                ELSE expires_at END"
                " RETURNING version",
                (kind, doc_id, expires_at, now, now),
            ).fetchone()
            return int(row["version"])

        return await self.runner.run(op, write=True)

    async def count_by_status(self, kind: str) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT status, COUNT(*) AS n FROM documents WHERE kind = ? GROUP BY status",
                (kind,),
            ).fetchall()
            return {r["status"]: r["n"] for r in rows if r["status"] is not None}

        return await self.runner.run(op, write=False, inline=False)

    async def purge_expired(self, kind: str, *, now: float) -> int:
        return await self.runner.run(
            lambda conn: (
                conn.execute(
                    "DELETE FROM documents WHERE kind = ? AND expires_at IS NOT NULL AND expires_at < ?",
                    (kind, now),
                ).rowcount
            ),
            write=True,
            inline=False,
        )

    async def transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """`fn` within one `BEGIN IMMEDIATE`: the write lock is held from its first read to
        its commit, so nothing lands in between, across threads and processes."""
        return await self.runner.run(lambda conn: _run_at_once(fn(_SqliteTx(conn))), write=True)

    async def ping(self) -> None:
        await self.runner.run(lambda conn: conn.execute("SELECT 1").fetchone(), write=False)

    async def aclose(self) -> None:
        await self.runner.aclose()

"""SQLite backend: the embedded default, one file, safe for several processes.

WAL lets readers run beside the one writer; `busy_timeout` makes a second process wait for
the write lock instead of failing. Every call runs on one dedicated thread per process, so
the connection is never shared across threads and the event loop never blocks on disk.
A claim is a single `UPDATE ... RETURNING`, atomic under SQLite's write lock.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from visgate.domain.errors import (
    ConflictError,
    LeaseLostError,
    StaleWriteError,
    StoreUnavailableError,
)
from visgate.store.base import LEASE_FIELDS

T = TypeVar("T")

_BUSY_TIMEOUT_S = 30.0

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
_FIELD = re.compile(r"[a-z_][a-z0-9_]{0,63}")


def _row_to_doc(row: sqlite3.Row) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(row["body"])
    doc["version"] = row["version"]
    doc["due_at"] = row["due_at"]
    for name in LEASE_FIELDS:
        doc[name] = row[name]
    return doc


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Switching a fresh file to WAL answers "database is locked" at once (the busy timeout
    does not apply) while another process does the same, so the switch is retried; any
    other error (a bad path, a corrupt file) is raised at once."""
    for attempt in Retrying(
        stop=stop_after_delay(_BUSY_TIMEOUT_S),
        wait=wait_random(0.005, 0.05),
        retry=retry_if_exception(_is_locked),
        reraise=True,
    ):
        with attempt:
            conn.execute("PRAGMA journal_mode=WAL")


def _body(doc: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in doc.items() if k not in LEASE_FIELDS and k != "version"},
        separators=(",", ":"),
    )


class SqliteBackend:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
            try:
                conn.row_factory = sqlite3.Row
                _switch_to_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"sqlite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def insert(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        new = {**doc, "version": 1}

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO documents (kind, id, tenant, status, sort_key, due_at, expires_at,"
                    " lease_owner, lease_token, lease_expires_at, version, body)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                    (
                        kind,
                        new["id"],
                        *(new.get(name) for name in _INDEXED),
                        *(new.get(name) for name in LEASE_FIELDS),
                        _body(new),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"{kind} {new['id']} already exists") from exc

        await self._run(op)
        return new

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        def op(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)
            ).fetchone()
            return _row_to_doc(row) if row else None

        return await self._run(op)

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

        return await self._run(op)

    async def delete(self, kind: str, doc_id: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "DELETE FROM documents WHERE kind = ? AND id = ?", (kind, doc_id)
            )
        )

    async def query(
        self, kind: str, *, where: dict[str, Any], limit: int, after: str | None = None
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
        return await self._run(
            lambda conn: [_row_to_doc(r) for r in conn.execute(sql, params).fetchall()]
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

        return await self._run(op)

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

        return await self._run(op)

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

        return await self._run(op)

    async def add_within(
        self,
        kind: str,
        doc_id: str,
        *,
        deltas: dict[str, int],
        limits: dict[str, int],
        base: dict[str, Any],
    ) -> dict[str, Any] | None:
        """One `UPDATE ... WHERE <every sum within its limit> RETURNING` on the JSON body,
        atomic under SQLite's write lock (the insert of a missing document first)."""
        for name in (*deltas, *limits):
            if not _FIELD.fullmatch(name):
                raise ValueError(f"not a field name: {name!r}")
        start = {**base, **{name: 0 for name in deltas}, "id": doc_id}

        def value(name: str) -> str:
            return f"COALESCE(json_extract(body, '$.{name}'), 0)"

        sets = ", ".join(f"'$.{n}', MAX(0, {value(n)} + ?)" for n in deltas)
        checks = "".join(f" AND {value(n)} + ? <= ?" for n in limits)
        params: list[Any] = [*deltas.values(), kind, doc_id]
        for name, limit in limits.items():
            params += [deltas.get(name, 0), limit]

        def op(conn: sqlite3.Connection) -> dict[str, Any] | None:
            conn.execute(
                "INSERT INTO documents (kind, id, tenant, version, body)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT (kind, id) DO NOTHING",
                (kind, doc_id, start.get("tenant"), _body(start)),
            )
            row = conn.execute(
                f"UPDATE documents SET body = json_set(body, {sets}), version = version + 1"
                f" WHERE kind = ? AND id = ?{checks} RETURNING {_COLUMNS}",
                params,
            ).fetchone()
            return _row_to_doc(row) if row else None

        return await self._run(op)

    async def count_by_status(self, kind: str) -> dict[str, int]:
        def op(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT status, COUNT(*) AS n FROM documents WHERE kind = ? GROUP BY status",
                (kind,),
            ).fetchall()
            return {r["status"]: r["n"] for r in rows if r["status"] is not None}

        return await self._run(op)

    async def purge_expired(self, kind: str, *, now: float) -> int:
        return await self._run(
            lambda conn: (
                conn.execute(
                    "DELETE FROM documents WHERE kind = ? AND expires_at IS NOT NULL AND expires_at < ?",
                    (kind, now),
                ).rowcount
            )
        )

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

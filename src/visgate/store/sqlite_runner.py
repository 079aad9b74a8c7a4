"""Where a SQLite statement runs: on the event loop when that costs less than leaving it,
on the backend's own thread when it could wait.

A keyed read or a one-row write takes 5-40 µs from the page cache; handing it to a thread and
back costs about 30 µs more, plus the wait for the GIL while that thread runs. So calls run
inline, on a connection that never waits for a lock (`busy_timeout=0`): a write opens with
`BEGIN IMMEDIATE`, which either takes the write lock at once or fails at once. A call that
finds the database busy (another process writing, or this process's thread mid-write) goes
to the thread, whose connection waits up to the busy timeout. Scans (`inline=False`) always
go to the thread.

Checkpoints copy the WAL into the database file and sync it, milliseconds of work that the
loop leaves to the thread: every `CHECKPOINT_EVERY` inline writes the thread runs a passive
checkpoint, which never holds a writer up. Inline writes go on meanwhile, so it cannot copy
everything, and a WAL starts over only once all of it is copied: the first inline write
after the thread's checkpoint copies the few frames written since (well under a millisecond)
with a RESTART checkpoint that does not wait, and the next write starts the WAL over. Writes
are never sent to the thread to wait behind a checkpoint: a thread write holds the write
lock while it waits for the GIL, every inline write that meets that lock follows it onto
the thread, and the queue feeds itself.

Every write is one transaction on either path, so a call that fails part-way leaves nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from visgate.domain.errors import StoreUnavailableError

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
# Inline commits between checkpoints: a one-record commit writes 5-8 pages, so this keeps the
# WAL near SQLite's own default of a checkpoint every 1,000 pages.
CHECKPOINT_EVERY = 200


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def switch_to_wal(conn: sqlite3.Connection) -> None:
    """Switching a fresh file to WAL answers "database is locked" at once (the busy timeout
    does not apply) while another process does the same, so the switch is retried; any
    other error (a bad path, a corrupt file) is raised at once."""
    for attempt in Retrying(
        stop=stop_after_delay(BUSY_TIMEOUT_S),
        wait=wait_random(0.005, 0.05),
        retry=retry_if_exception(is_locked),
        reraise=True,
    ):
        with attempt:
            conn.execute("PRAGMA journal_mode=WAL")


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn` in one write transaction, rolled back if it raises (autocommit connections)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class SqliteRunner:
    """Runs functions of a connection for one database file, inline or on one thread."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.schema = schema
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the thread's
        self._inline: sqlite3.Connection | None = None
        self._inline_thread: int | None = None  # the thread that owns `_inline`
        self._writes_since_checkpoint = 0
        self._checkpoint: Future[None] | None = None

    async def run(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, inline: bool = True
    ) -> T:
        if inline:
            conn = self._inline_connection()
            if conn is not None:
                try:
                    result = transaction(conn, fn) if write else fn(conn)
                except sqlite3.OperationalError as exc:
                    if not is_locked(exc):
                        raise StoreUnavailableError(f"sqlite: {exc}") from exc
                else:
                    if write:
                        self._count_write()
                    return result
        return await self._on_thread(fn, write=write)

    async def _on_thread(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        def call() -> T:
            try:
                conn = self._thread_connection()
                return transaction(conn, fn) if write else fn(conn)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"sqlite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._thread(), call)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        return self._executor

    def _thread_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            try:
                conn.row_factory = sqlite3.Row
                switch_to_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                conn.executescript(self.schema)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _inline_connection(self) -> sqlite3.Connection | None:
        """The loop's connection, once the thread's has set the file up; None on any other
        thread than the one that opened it (a connection belongs to one thread)."""
        if self._conn is None:  # the file and its schema are not made yet
            return None
        if self._inline is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=0, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._inline, self._inline_thread = conn, threading.get_ident()
        return self._inline if self._inline_thread == threading.get_ident() else None

    def _count_write(self) -> None:
        self._writes_since_checkpoint += 1
        if self._checkpoint is not None:
            if self._checkpoint.done():
                self._checkpoint = None
                self._finish_checkpoint()
            return
        if self._writes_since_checkpoint >= CHECKPOINT_EVERY:
            self._writes_since_checkpoint = 0
            self._checkpoint = self._thread().submit(self._passive_checkpoint)

    def _passive_checkpoint(self) -> None:
        try:
            self._thread_connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # the next round, or the thread's own autocheckpoint, catches up
            pass

    def _finish_checkpoint(self) -> None:
        """Copy what was written during the thread's checkpoint, inline and without waiting
        (busy: a reader of another process is on the WAL; the next round tries again)."""
        assert self._inline is not None
        try:
            self._inline.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        except sqlite3.Error:
            pass

    async def aclose(self) -> None:
        """Close both connections and the thread; a later call opens them again."""
        if self._inline is not None:
            self._inline.close()
            self._inline = self._inline_thread = None
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)

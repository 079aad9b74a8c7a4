"""`SECRETS=local`: user secrets encrypted with Fernet in a small SQLite file.

SQLite gives atomic, crash-safe writes and safe concurrent use by several processes on one
machine (WAL, busy timeout) without a lock file of our own. Calls run like the record
store's (store/sqlite_runner.py): on the event loop unless the file is busy.
Only Fernet tokens reach the disk. The key comes from `VISGATE_SECRET_KEY` (one key, or `new,old,...` while rotating) or
from a 0600 key file created once beside the database.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from visgate.domain.errors import SecretNotFoundError, SecretStoreError
from visgate.secrets.naming import check_ids
from visgate.store.sqlite_runner import BUSY_TIMEOUT_S, SqliteRunner, switch_to_wal, transaction

log = structlog.get_logger(__name__)

REF_PREFIX = "local:"
KEY_FILE_NAME = "secret.key"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    token BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
)
"""


def parse_keys(keys: str) -> MultiFernet:
    """`new[,old...]`: the first key encrypts, every key decrypts (rotation without downtime)."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise SecretStoreError("VISGATE_SECRET_KEY is empty")
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in parts])
    except (ValueError, UnicodeEncodeError):
        # The message never quotes the key.
        raise SecretStoreError(
            "VISGATE_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); make one "
            'with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None


def load_or_create_key_file(path: Path, make: Callable[[], bytes] = Fernet.generate_key) -> str:
    """Read the key file, creating it first (0600, content from `make`) if absent.

    Created under a temporary name and published with `link`, which fails if the file
    exists: two processes starting at once end up with the same key, never half a file.
    """
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            log.info("secret_key_file_created", path=str(path))
        except FileExistsError:
            pass  # another process won the race; use its key
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def _read_key_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("secret_key_file_too_open", path=str(path), mode=oct(mode))
    return path.read_text(encoding="ascii").strip()


class LocalSecretStore:
    """Fernet-encrypted secrets in one SQLite file; refs look like `local:<owner>/<name>`."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        key_source = key or load_or_create_key_file(self._path.parent / KEY_FILE_NAME)
        self._fernet = parse_keys(key_source)
        self._init_db()
        self._runner = SqliteRunner(self._path, _SCHEMA)
        if key and "," in key:
            rotated = self._rotate()
            log.info("secret_keys_rotated", rows=rotated)

    def __repr__(self) -> str:
        return f"LocalSecretStore(path={str(self._path)!r})"

    @staticmethod
    def ref_for(owner: str, name: str) -> str:
        return f"{REF_PREFIX}{owner}/{name}"

    async def put(self, deployment_id: str, name: str, value: str) -> str:
        check_ids(deployment_id, name)
        token = self._fernet.encrypt(value.encode("utf-8"))
        await self._runner.run(
            lambda conn: self._write(conn, deployment_id, name, token), write=True
        )
        return self.ref_for(deployment_id, name)

    async def get(self, ref: str) -> str:
        owner, name = _parse_ref(ref)
        token = await self._runner.run(lambda conn: self._read(conn, owner, name), write=False)
        if token is None:
            raise SecretNotFoundError(f"secret {ref} does not exist (deleted or never stored)")
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise SecretStoreError(
                f"secret {ref} cannot be decrypted: VISGATE_SECRET_KEY (or the key file) differs "
                "from the key it was written with; list the old key after the new one"
            ) from None

    async def delete_for(self, deployment_id: str) -> None:
        await self._runner.run(lambda conn: self._delete_owner(conn, deployment_id), write=True)

    async def aclose(self) -> None:
        """Close the connections; a later call opens new ones."""
        await self._runner.aclose()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def _init_db(self) -> None:
        created = not self._path.exists()
        try:
            conn = self._connect()
            try:
                switch_to_wal(conn)
                conn.execute(_SCHEMA)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise SecretStoreError(f"secret store {self._path} is unusable: {exc}") from None
        if created:
            self._path.chmod(0o600)

    @staticmethod
    def _write(conn: sqlite3.Connection, owner: str, name: str, token: bytes) -> None:
        conn.execute(
            "INSERT INTO secrets (owner, name, token, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (owner, name) DO UPDATE SET token = excluded.token, "
            "updated_at = excluded.updated_at",
            (owner, name, token, time.time()),
        )

    @staticmethod
    def _read(conn: sqlite3.Connection, owner: str, name: str) -> bytes | None:
        row = conn.execute(
            "SELECT token FROM secrets WHERE owner = ? AND name = ?", (owner, name)
        ).fetchone()
        return None if row is None else bytes(row[0])

    @staticmethod
    def _delete_owner(conn: sqlite3.Connection, owner: str) -> None:
        conn.execute("DELETE FROM secrets WHERE owner = ?", (owner,))

    def _rotate(self) -> int:
        """Re-encrypt every row with the first key, so the old keys can then be dropped."""

        def rotate(conn: sqlite3.Connection) -> int:
            rows = conn.execute("SELECT owner, name, token FROM secrets").fetchall()
            for owner, name, token in rows:
                try:
                    fresh = self._fernet.rotate(bytes(token))
                except InvalidToken:
                    log.warning("secret_not_rotated", owner=owner, name=name)
                    continue
                conn.execute(
                    "UPDATE secrets SET token = ? WHERE owner = ? AND name = ?",
                    (fresh, owner, name),
                )
            return len(rows)

        conn = self._connect()
        try:
            return transaction(conn, rotate)
        finally:
            conn.close()


def _parse_ref(ref: str) -> tuple[str, str]:
    if ref.startswith(REF_PREFIX):
        owner, sep, name = ref[len(REF_PREFIX) :].partition("/")
        if sep and owner and name and "/" not in name:
            return owner, name
    raise SecretNotFoundError(
        f"{ref!r} is not a local secret reference (was it written with SECRETS=secret-manager?)"
    )

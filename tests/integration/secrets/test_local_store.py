"""`SECRETS=local`: what sits on disk, where the key comes from, rotation, several processes."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from visgate.domain.errors import SecretStoreError
from visgate.secrets.local import LocalSecretStore

DEP = "dep_0123456789abcdef"
VALUE = "rpa_PLAINTEXT_MARKER_0123456789"


def data_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file()]


async def test_values_never_reach_the_disk_in_plain_text(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets.db", None)
    ref = await store.put(DEP, "runpod_api_key", VALUE)
    await store.put(DEP, "hf_token", "ünïcødé " + VALUE)
    assert await store.get(ref) == VALUE
    files = data_files(tmp_path)
    assert any(p.name.startswith("secrets.db") for p in files)
    for path in files:
        blob = path.read_bytes()
        assert VALUE.encode() not in blob, path
        assert VALUE.encode("utf-16-le") not in blob, path


async def test_a_key_file_is_made_once_readable_by_owner_only(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets.db", None)
    ref = await store.put(DEP, "hf_token", "hf_value")
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    reopened = LocalSecretStore(tmp_path / "secrets.db", None)
    assert await reopened.get(ref) == "hf_value"
    assert key_file.read_text() == key
    assert stat.S_IMODE((tmp_path / "secrets.db").stat().st_mode) == 0o600


async def test_a_given_key_is_used_and_no_key_file_is_written(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    store = LocalSecretStore(tmp_path / "secrets.db", key)
    ref = await store.put(DEP, "hf_token", "hf_value")
    assert not (tmp_path / "secret.key").exists()
    assert await LocalSecretStore(tmp_path / "secrets.db", key).get(ref) == "hf_value"


def test_a_malformed_key_stops_start_up_without_echoing_it(tmp_path: Path) -> None:
    bad = "not-a-fernet-key-but-a-secret-anyway"
    with pytest.raises(SecretStoreError, match="VISGATE_SECRET_KEY") as caught:
        LocalSecretStore(tmp_path / "secrets.db", bad)
    assert bad not in str(caught.value)


async def test_the_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    ref = await LocalSecretStore(tmp_path / "secrets.db", Fernet.generate_key().decode()).put(
        DEP, "hf_token", "hf_value"
    )
    other = LocalSecretStore(tmp_path / "secrets.db", Fernet.generate_key().decode())
    with pytest.raises(SecretStoreError, match="differs from the key") as caught:
        await other.get(ref)
    assert "hf_value" not in str(caught.value)


async def test_rotation_with_new_then_old_key_reencrypts_everything(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ref = await LocalSecretStore(tmp_path / "secrets.db", old).put(DEP, "hf_token", "hf_value")

    LocalSecretStore(tmp_path / "secrets.db", f"{new},{old}")  # the restart during rotation

    assert await LocalSecretStore(tmp_path / "secrets.db", new).get(ref) == "hf_value"
    with pytest.raises(SecretStoreError):
        await LocalSecretStore(tmp_path / "secrets.db", old).get(ref)


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from visgate.secrets.local import LocalSecretStore

    async def main(path, who):
        store = LocalSecretStore(Path(path), None)
        refs = {}
        for i in range(15):
            refs[f"{who}-{i}"] = await store.put(f"dep_{who}", f"n{i}", f"value-{who}-{i}")
        print(json.dumps(refs))

    sys.stdin.readline()  # start together
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_several_processes_share_one_fresh_store(tmp_path: Path) -> None:
    db = tmp_path / "data" / "secrets.db"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            str(db),
            who,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for who in ("a", "b", "c", "d")
    ]
    outputs = await asyncio.wait_for(
        asyncio.gather(*(p.communicate(b"go\n") for p in procs)), timeout=60
    )
    refs: dict[str, str] = {}
    for proc, (out, _) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0
        refs.update(json.loads(out.decode().strip().splitlines()[-1]))  # structlog may print first

    store = LocalSecretStore(db, None)
    assert len(refs) == 60
    for label, ref in refs.items():
        who, i = label.split("-")
        assert await store.get(ref) == f"value-{who}-{i}"

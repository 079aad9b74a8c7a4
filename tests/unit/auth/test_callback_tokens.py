"""Without INTERNAL_WEBHOOK_SECRET the callback key is made once in the data folder; two
processes starting at the same moment must end up with the same whole key (an empty one
would make every callback token forgeable)."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from visgate.auth.callback_tokens import load_callback_key
from visgate.settings import load_settings


def test_simultaneous_starts_share_one_non_empty_private_key(tmp_path: Path) -> None:
    settings = load_settings(
        VISGATE_DB_PATH=str(tmp_path / "visgate.db"), INTERNAL_WEBHOOK_SECRET=None
    )
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def start() -> None:
        barrier.wait()
        keys.append(load_callback_key(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(keys) == 8 and len(set(keys)) == 1
    assert len(keys[0]) == 64  # 32 random bytes, hex
    mode = stat.S_IMODE((tmp_path / "internal_webhook.key").stat().st_mode)
    assert mode == 0o600

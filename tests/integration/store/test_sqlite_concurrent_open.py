"""Several processes opening one fresh SQLite file at once (`visgate serve` and `visgate
worker` started together, or several workers) all get a working store. Switching a new file
to WAL answers "database is locked" at once, without waiting on the busy timeout, so the
store must retry that switch."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

PROCESSES = 6
FILES = 50
SLOT_S = 0.015
# Every process opens the same fresh files, file k at the same instant (sleep, then spin the
# last 2 ms so wake-up jitter does not spread them out): many near-simultaneous first opens.
_OPENER = """
import asyncio, sys, time
from visgate.store.sqlite import SqliteBackend

folder, start, me, files, slot_s = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])

async def main() -> None:
    errors = []
    for k in range(files):
        slot = start + k * slot_s
        time.sleep(max(0.0, slot - time.time() - 0.002))
        while time.time() < slot:
            pass
        backend = SqliteBackend(f"{folder}/f{k}.db")
        try:
            await backend.insert("probe", {"id": me})
        except Exception as exc:
            errors.append(f"f{k}: {type(exc).__name__}: {exc}")
        finally:
            await backend.aclose()
    print("\\n".join(errors))

asyncio.run(main())
"""


def _opener(folder: Path, start: float, name: str) -> list[str]:
    return [sys.executable, "-c", _OPENER, str(folder), str(start), name, str(FILES), str(SLOT_S)]


def test_processes_opening_fresh_files_together_all_succeed(tmp_path: Path) -> None:
    start = time.time() + 0.8  # after every interpreter has started and imported
    procs = [
        subprocess.Popen(
            _opener(tmp_path, start, f"p{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in results]
    errors = [line for out, _ in results for line in out.splitlines() if line]
    assert not errors, errors[:5]
    # Every file holds every process's row: each open really wrote.
    for k in range(FILES):
        with contextlib.closing(sqlite3.connect(tmp_path / f"f{k}.db")) as conn:
            assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == PROCESSES

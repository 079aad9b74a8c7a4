"""Bounds and masking for workers' own log lines, shared by every backend and the route.

A worker's output can be large and can echo its environment (tokens, keys), so what leaves
the control plane is bounded twice — a line count the caller picks (at most
`MAX_WORKER_LOG_LINES`) and `MAX_WORKER_LOG_BYTES` in all — and every secret the control
plane knows for the deployment is masked before a line is returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from visgate.providers.base import WorkerLogLine

MAX_WORKER_LOG_LINES = 1000
MAX_WORKER_LOG_BYTES = 256 * 1024
MASK = "[redacted]"


def tail_text(path: Path, max_bytes: int) -> str:
    """The last `max_bytes` of a text file, starting at a whole line."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    if size > max_bytes:
        data = data.partition(b"\n")[2]
    return data.decode("utf-8", errors="replace")


def bounded(lines: list[WorkerLogLine], count: int) -> list[WorkerLogLine]:
    """The last `count` lines whose text fits in `MAX_WORKER_LOG_BYTES` together."""
    kept: list[WorkerLogLine] = []
    budget = MAX_WORKER_LOG_BYTES
    for entry in reversed(lines[-count:]):
        budget -= len(entry.line.encode()) + 1
        if budget < 0:
            break
        kept.append(entry)
    return kept[::-1]


def masked(lines: Iterable[WorkerLogLine], secrets: Iterable[str]) -> list[WorkerLogLine]:
    """Lines with every known secret (at least 6 characters, longest first) replaced."""
    known = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
    out = []
    for entry in lines:
        text = entry.line
        for secret in known:
            text = text.replace(secret, MASK)
        out.append(
            WorkerLogLine(worker_id=entry.worker_id, line=text, ts=entry.ts, source=entry.source)
        )
    return out

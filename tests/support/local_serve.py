"""What tests that run `visgate serve` with the local provider share: waiting for it to
answer, and stopping the local workers it started (they outlive the service on purpose, like
Runpod endpoints, so a test stops the ones it left)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "visgate serve exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("visgate serve did not answer /health")


def stop_local_workers(state: Path) -> None:
    """SIGTERM every worker process group `local-endpoints.json` names."""
    if not state.exists():
        return
    for entry in json.loads(state.read_text()).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(entry["pid"]), signal.SIGTERM)

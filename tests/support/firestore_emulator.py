"""Start and reset the real Firestore emulator that ships with the machine image (README, "Tests and benchmarks")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

EMULATOR = Path(
    os.environ.get(
        "FIRESTORE_EMULATOR_BIN",
        "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
    )
)
PROJECT = "visgate-test"


class EmulatorMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FirestoreEmulator:
    def __init__(self) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> FirestoreEmulator:
        if not EMULATOR.exists():
            raise EmulatorMissing(
                f"Firestore emulator not found at {EMULATOR}. The Firestore tests need the "
                "emulator from the Google Cloud SDK (package google-cloud-cli-firestore-emulator) "
                "and Java 11+; set FIRESTORE_EMULATOR_BIN to its path."
            )
        self.proc = subprocess.Popen(
            [str(EMULATOR), "start", "--host=127.0.0.1", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorMissing(f"Firestore emulator exited with {self.proc.returncode}")
            try:
                if httpx.get(f"http://{self.host}/", timeout=1.0).text.strip() == "Ok":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise EmulatorMissing(f"Firestore emulator did not answer within {timeout}s")

    def reset(self, project: str = PROJECT) -> None:
        httpx.delete(
            f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents",
            timeout=10.0,
        ).raise_for_status()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None

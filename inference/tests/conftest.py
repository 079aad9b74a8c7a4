"""Worker tests: `inference/` on sys.path, torch kept to few threads, and the tiny demo models
built once per run (random weights, saved with save_pretrained, loaded by the worker's loader).

No __init__.py here on purpose: a `tests` package would clash with the repository's own.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

INFERENCE_DIR = Path(__file__).resolve().parents[1]
if str(INFERENCE_DIR) not in sys.path:
    sys.path.insert(0, str(INFERENCE_DIR))

import torch  # noqa: E402

torch.set_num_threads(2)


def job_error(out: dict) -> dict:
    """A failed job's `error`, which must be a string (Runpod fails a job on a string error;
    an object is reported to show as COMPLETED), holding the structured JSON."""
    assert isinstance(out["error"], str), out
    detail = json.loads(out["error"])
    assert isinstance(detail, dict) and {"type", "message"} <= detail.keys(), detail
    return detail


@pytest.fixture(name="job_error")
def job_error_fixture():
    return job_error


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MODEL_CACHE_DIR that holds the built demo models (shared: building takes ~1 s)."""
    from visgate_worker.demo import ensure_demo_models

    cache = tmp_path_factory.mktemp("model-cache")
    ensure_demo_models(cache)
    return cache


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class CallbackReceiver:
    """A loopback HTTP server standing in for the control plane's callback route."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to give first, in order

    def statuses(self) -> list[str]:
        return [r.body["status"] for r in self.received]


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                receiver.received.append(Received(self.path, dict(self.headers), body))
                code = receiver.answers.pop(0) if receiver.answers else 200
            payload = json.dumps({"accepted": code < 300}).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/internal/deployment-ready/dep_1"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


WORKER_ENV = (
    "HF_MODEL_ID",
    "VISGATE_WEBHOOK",
    "VISGATE_CALLBACK_TOKEN",
    "HF_TOKEN",
    "EAGER_LOAD_ALL",
    "VRAM_OFFLOAD_THRESHOLD_GB",
    "MODEL_CACHE_DIR",
    "VISGATE_DEMO_MODELS",
    "VISGATE_RESULT_CACHE_SIZE",
    "RUNPOD_MODEL_CACHE_DIR",
)


@pytest.fixture(autouse=True)
def _clean_worker_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests say what they want; nothing leaks in from the shell or out to the next test."""
    for name in WORKER_ENV:
        monkeypatch.delenv(name, raising=False)
    from visgate_worker import handler

    monkeypatch.setattr(handler, "_current", None)
    yield


@pytest.fixture
def demo_settings(model_cache: Path):
    """Settings for a demo worker on the shared model cache; keywords override."""
    from visgate_worker.settings import WorkerSettings

    def make(**overrides: object) -> WorkerSettings:
        values: dict[str, object] = {
            "model_cache_dir": model_cache,
            "visgate_demo_models": True,
            "torch_num_threads": 2,
        }
        values.update(overrides)
        return WorkerSettings(**values)  # type: ignore[arg-type]

    return make

"""The image's entry point under the runpod SDK's `--test_input` mode: one job, then exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

INFERENCE_DIR = Path(__file__).resolve().parents[1]
TOKENS = {"HF_TOKEN": "hf_sdkTestSecret987", "VISGATE_CALLBACK_TOKEN": "cb_sdkTestSecret654"}


def run_worker(model_cache: Path, job: dict) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISGATE_", "RUNPOD_", "HF_"))}
    env.update(
        PYTHONPATH=str(INFERENCE_DIR),
        MODEL_CACHE_DIR=str(model_cache),
        VISGATE_DEMO_MODELS="1",
        TORCH_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        **TOKENS,
    )
    return subprocess.run(  # noqa: S603 - fixed argv, our own interpreter and module
        [sys.executable, "-m", "visgate_worker.main", "--test_input", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_test_input_runs_one_job_end_to_end_and_exits_zero(model_cache: Path) -> None:
    done = run_worker(model_cache, {"input": {"text": "a small red fox", "quality": "fast"}})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "completed successfully" in output
    # the SDK prints the result (cut short after a few kB) once the job completed
    assert "Job result: {'output': {'concept': 'quadruped', 'path': 'primary'" in output
    assert "'name': 'head'" in output
    ready = [json.loads(line) for line in done.stdout.splitlines() if '"worker_ready"' in line]
    assert ready and ready[0]["demo"] is True  # structlog JSON lines on stdout
    assert all(secret not in output for secret in TOKENS.values())


def test_test_input_with_bad_input_fails_the_job(model_cache: Path) -> None:
    done = run_worker(model_cache, {"input": {"text": "1234"}})
    assert done.returncode == 1
    assert "ValidationError" in done.stdout + done.stderr
    # the SDK passes the error on as the string the handler returned: JSON, still structured
    assert 'failed with error: {"type": "ValidationError", "message": "invalid input: text:' in (
        done.stdout + done.stderr
    )


def test_test_input_warmup_completes_with_ok(model_cache: Path) -> None:
    done = run_worker(model_cache, {"input": {"warmup": True}})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Job result: {'output': {'warmup': 'ok'}}" in output


def test_bad_environment_reports_failed_and_exits(model_cache: Path, callback_receiver) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISGATE_", "HF_"))}
    env.update(
        PYTHONPATH=str(INFERENCE_DIR),
        MODEL_CACHE_DIR=str(model_cache),
        VRAM_OFFLOAD_THRESHOLD_GB="lots",
        VISGATE_WEBHOOK=callback_receiver.url,
        VISGATE_CALLBACK_TOKEN=TOKENS["VISGATE_CALLBACK_TOKEN"],
    )
    done = subprocess.run(
        [sys.executable, "-m", "visgate_worker.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    (report,) = [r.body for r in callback_receiver.received]
    assert report["status"] == "failed"
    assert "VRAM_OFFLOAD_THRESHOLD_GB" in report["error"] and "lots" not in report["error"]

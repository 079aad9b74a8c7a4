"""The image's entry point (`python -m visgate_worker.main`): start up, then hand the job loop
to the runpod SDK. `--test_input '{"input": {...}}'` (parsed by the SDK) runs one job and exits.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import runpod
import structlog
from pydantic import ValidationError

from visgate_worker.callback import callback_for
from visgate_worker.handler import concurrency_modifier, handle_job
from visgate_worker.loading import startup
from visgate_worker.log import configure_logging, quiet_libraries
from visgate_worker.settings import WorkerSettings


async def runpod_handler(job: dict[str, Any]) -> dict[str, Any]:
    """Inference runs in a thread so the SDK's event loop (heartbeats, job fetches) stays live."""
    return await asyncio.to_thread(handle_job, job)


def read_settings() -> WorkerSettings:
    """The environment, or exit 1 after reporting `failed`: a template with a bad value (say
    `VRAM_OFFLOAD_THRESHOLD_GB=lots`) should fail the deployment, not time it out."""
    try:
        return WorkerSettings()
    except ValidationError as exc:
        configure_logging(os.environ.get("LOG_LEVEL", "info"))
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        message = f"invalid worker environment: {problems}"
        structlog.get_logger(__name__).error("settings_invalid", error=message)
        callback_for(
            os.environ.get("VISGATE_WEBHOOK"), os.environ.get("VISGATE_CALLBACK_TOKEN")
        ).send("failed", error=message)
        sys.exit(1)


def main() -> None:
    settings = read_settings()
    configure_logging(settings.log_level)
    quiet_libraries()
    try:
        startup(settings)
    except Exception:
        # Already reported as `failed`; exiting lets Runpod show the worker as unhealthy.
        sys.exit(1)
    runpod.serverless.start(
        {"handler": runpod_handler, "concurrency_modifier": concurrency_modifier}
    )


if __name__ == "__main__":
    main()

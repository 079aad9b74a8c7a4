"""The worker as a local process (`PROVIDER=local`): `visgate.providers.local.adapter` imports
this module and calls `startup()` then `handle_job(job)`. An empty model cache means the tiny
demo models here, so a local deployment runs on CPU with no downloads."""

from __future__ import annotations

from visgate_worker import loading
from visgate_worker.handler import handle_job
from visgate_worker.log import configure_logging, quiet_libraries
from visgate_worker.settings import WorkerSettings

__all__ = ["handle_job", "startup"]


def startup() -> loading.LoadedModels:
    settings = WorkerSettings()
    configure_logging(settings.log_level)
    quiet_libraries()
    return loading.startup(settings, local_entry=True)

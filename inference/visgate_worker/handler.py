"""The job handler: answer warm-ups, validate, answer repeats from the cache, run inference
under the GPU lock.

One process-wide lock serializes GPU work: concurrent jobs queue and never share a pipeline's
mutable state (the system this replaces answered 10 parallel requests with 10 HTTP 500s).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from visgate_worker.cache import ResultCache
from visgate_worker.errors import WorkerError
from visgate_worker.log import redact_text
from visgate_worker.model_set import ModelSet
from visgate_worker.pipeline import ImagePipeline, PartsPipeline
from visgate_worker.schemas import (
    WARMUP_OUTPUT,
    ImageJobInput,
    PartsJobInput,
    error_body,
    is_warmup,
    validation_error,
    validation_fields,
)
from visgate_worker.settings import WorkerSettings
from visgate_worker.vram import VramMeter

log = structlog.get_logger(__name__)

GPU_LOCK = threading.Lock()
# One job in flight per worker: with GPU work serialized, more would only wait on GPU_LOCK
# instead of in Runpod's queue, where another worker could take them.
MAX_CONCURRENT_JOBS = 1


def concurrency_modifier(current_concurrency: int) -> int:
    return MAX_CONCURRENT_JOBS


class JobHandler:
    def __init__(
        self,
        pipeline: PartsPipeline | ImagePipeline,
        schema: type[PartsJobInput] | type[ImageJobInput],
        cache: ResultCache,
        lock: threading.Lock = GPU_LOCK,
    ) -> None:
        self.pipeline = pipeline
        self.schema = schema
        self.cache = cache
        self.lock = lock

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        job_id = job.get("id") if isinstance(job, dict) else None
        raw = job.get("input") if isinstance(job, dict) else None
        if is_warmup(raw):
            log.info("job_warmup", job_id=job_id)
            return dict(WARMUP_OUTPUT)
        try:
            parsed: BaseModel = self.schema.model_validate(raw)
        except ValidationError as exc:
            log.info("job_rejected", job_id=job_id, fields=validation_fields(exc))
            return validation_error(exc)
        key = parsed.cache_key()  # type: ignore[attr-defined]
        if (hit := self.cache.get(key)) is not None:
            log.info("job_cache_hit", job_id=job_id)
            return {**hit, "cached": True}
        started = time.perf_counter()
        with self.lock:
            if (hit := self.cache.get(key)) is not None:  # an identical job ran while we waited
                log.info("job_cache_hit", job_id=job_id)
                return {**hit, "cached": True}
            try:
                result = self.pipeline.run(parsed)  # type: ignore[arg-type]
            except Exception as exc:
                kind = exc.type if isinstance(exc, WorkerError) else "InferenceError"
                message = redact_text(f"{type(exc).__name__}: {exc}")
                log.error("job_failed", job_id=job_id, error_type=kind, error=message)
                return error_body(kind, message)
        self.cache.put(key, result)
        log.info(
            "job_completed",
            job_id=job_id,
            path=result.get("path"),
            ms=int((time.perf_counter() - started) * 1000),
        )
        return {**result, "cached": False}


_current: JobHandler | None = None


def install(models: ModelSet, *, meter: VramMeter, settings: WorkerSettings) -> JobHandler:
    """Make `handle_job` serve these models (called by start-up once they are loaded)."""
    global _current
    cache = ResultCache(settings.visgate_result_cache_size)
    if models.kind == "parts":
        pipeline: PartsPipeline | ImagePipeline = PartsPipeline(
            models, meter, settings.vram_offload_threshold_gb
        )
        _current = JobHandler(pipeline, PartsJobInput, cache)
    else:
        _current = JobHandler(ImagePipeline(models), ImageJobInput, cache)
    return _current


def handle_job(job: dict[str, Any]) -> dict[str, Any]:
    """The runpod handler: `job` is `{"id": ..., "input": {...}}`."""
    if _current is None:
        if isinstance(job, dict) and is_warmup(job.get("input")):
            return dict(WARMUP_OUTPUT)  # it only has to reach a started process
        return error_body("WorkerNotReadyError", "the worker has not finished starting up")
    return _current(job)

"""GPU work is serialized: concurrent jobs all succeed, one after another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

from PIL import Image

from visgate_worker import handler
from visgate_worker.cache import ResultCache
from visgate_worker.loading import startup
from visgate_worker.main import runpod_handler
from visgate_worker.pipeline import PartsPipeline
from visgate_worker.schemas import PartsJobInput


class SingleEntryTextToImage:
    """A text-to-image double that breaks, like the original system did, if entered twice."""

    name = "double/text-to-image"
    loaded = True

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self.calls = 0

    def generate(self, prompt: str, **kwargs: Any) -> Image.Image:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("Already borrowed")
        try:
            time.sleep(0.02)
            self.calls += 1
            return Image.new("RGB", (kwargs["width"], kwargs["height"]), "white")
        finally:
            self._busy.release()


async def test_ten_concurrent_jobs_all_succeed(demo_settings) -> None:
    loaded = startup(demo_settings())
    double = SingleEntryTextToImage()
    loaded.model_set.text_to_image = double  # type: ignore[assignment]
    jobs = [
        {"id": f"j{i}", "input": {"text": f"a cat number {i}", "quality": "fast"}}
        for i in range(10)
    ]
    results = await asyncio.gather(*(runpod_handler(job) for job in jobs))
    assert [("error" in r) for r in results] == [False] * 10
    assert double.calls == 10
    assert handler.concurrency_modifier(4) == 1


async def test_without_the_lock_the_same_double_fails(demo_settings) -> None:
    """The control for the test above: it can fail."""
    loaded = startup(demo_settings())
    double = SingleEntryTextToImage()
    loaded.model_set.text_to_image = double  # type: ignore[assignment]
    pipeline = PartsPipeline(loaded.model_set, meter=_NoGpu(), offload_threshold_gb=18.0)
    unlocked = handler.JobHandler(
        pipeline,
        PartsJobInput,
        ResultCache(0),
        lock=contextlib.nullcontext(),  # type: ignore[arg-type]
    )
    jobs = [{"id": f"j{i}", "input": {"text": f"a dog number {i}"}} for i in range(10)]
    results = await asyncio.gather(*(asyncio.to_thread(unlocked, job) for job in jobs))
    errors = [json.loads(r["error"])["message"] for r in results if "error" in r]
    assert any("Already borrowed" in message for message in errors)


class _NoGpu:
    def allocated_gb(self) -> float:
        return 0.0

    def gpu_name(self) -> str:
        return "cpu"

"""Time the worker's pipeline on the tiny demo models and report peak VRAM.

    python inference/bench/tiny_pipeline.py [--jobs 5] [--cache-dir DIR]

Runs start-up (demo models, EAGER_LOAD_ALL on), then N primary-path jobs and N fallback-path
jobs (the part generator is swapped for one that always fails, as when PartCrafter decodes
nothing), each with a fresh prompt so the result cache stays out of the way. On CUDA it also
prints `torch.cuda.max_memory_allocated` after start-up and after each path. One JSON object
on stdout; the worker's own logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from visgate_worker import handler
from visgate_worker.errors import PartGenerationError
from visgate_worker.loading import startup
from visgate_worker.log import configure_logging, quiet_libraries
from visgate_worker.settings import WorkerSettings

GIB = float(1 << 30)


class AlwaysFailingPartGenerator:
    name = "bench/failing-part-generator"
    loaded = True

    def generate_parts(self, *args: Any, **kwargs: Any) -> Any:
        raise PartGenerationError("forced by the benchmark")


def peak_gb() -> float | None:
    return round(torch.cuda.max_memory_allocated() / GIB, 4) if torch.cuda.is_available() else None


def run_jobs(prefix: str, count: int, quality: str) -> dict[str, Any]:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times, paths = [], set()
    for i in range(count):
        started = time.perf_counter()
        out = handler.handle_job(
            {"id": f"{prefix}-{i}", "input": {"text": f"a {prefix} cat {i}", "quality": quality}}
        )
        if "error" in out:
            raise SystemExit(f"job failed: {out['error']}")
        times.append((time.perf_counter() - started) * 1000)
        paths.add(out["path"])
    return {
        "paths": sorted(paths),
        "jobs": count,
        "ms_median": round(statistics.median(times), 1),
        "ms_max": round(max(times), 1),
        "ms_first": round(times[0], 1),
        "peak_vram_gb": peak_gb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--quality", default="standard", choices=["fast", "standard", "high"])
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="MODEL_CACHE_DIR (default: a temp dir)"
    )
    args = parser.parse_args()
    configure_logging(os.environ.get("LOG_LEVEL", "info"), stream=sys.stderr)
    quiet_libraries()
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="visgate-bench-"))

    settings = WorkerSettings(
        model_cache_dir=cache_dir,
        visgate_demo_models=True,
        eager_load_all=True,
        visgate_webhook=None,
    )
    started = time.perf_counter()
    loaded = startup(settings)
    startup_s = time.perf_counter() - started
    report: dict[str, Any] = {
        "device": loaded.device.name,
        "dtype": str(loaded.device.dtype),
        "gpu": loaded.gpu,
        "torch": torch.__version__,
        "startup_s": round(startup_s, 2),
        "models_loaded": loaded.models_loaded,
        "vram_allocated_after_startup_gb": loaded.vram_allocated_gb,
        "peak_vram_startup_gb": peak_gb(),
    }
    report["primary"] = run_jobs("primary", args.jobs, args.quality)
    loaded.model_set.part_generator = AlwaysFailingPartGenerator()  # type: ignore[assignment]
    report["fallback"] = run_jobs("fallback", args.jobs, args.quality)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

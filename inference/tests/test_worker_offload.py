"""After a fallback job, fallback models are released when allocated VRAM passes the threshold,
and loaded again by the next fallback job."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from visgate_worker import handler
from visgate_worker.errors import PartGenerationError
from visgate_worker.loading import startup


class VramMeterDouble:
    def __init__(self, allocated_gb: float) -> None:
        self.value = allocated_gb

    def allocated_gb(self) -> float:
        return self.value

    def gpu_name(self) -> str:
        return "Test GPU 24GB"


class FailingPartGenerator:
    name = "double/part-generator"
    loaded = True

    def generate_parts(self, *args: Any, **kwargs: Any) -> Any:
        raise PartGenerationError("no parts today")


def fallback_job(text: str) -> dict[str, Any]:
    out = handler.handle_job({"id": text, "input": {"text": text, "quality": "fast"}})
    assert out["path"] == "fallback", out
    return out


def test_fallback_models_are_offloaded_over_the_threshold_and_reloaded_on_demand(
    demo_settings,
) -> None:
    meter = VramMeterDouble(allocated_gb=19.5)
    loaded = startup(demo_settings(vram_offload_threshold_gb=18.0), meter=meter)
    models = loaded.model_set
    models.part_generator = FailingPartGenerator()  # type: ignore[assignment]
    assert not models.segmenter.loaded  # lazy: EAGER_LOAD_ALL is off

    with capture_logs() as logs:
        fallback_job("a cat")
    events = [e["event"] for e in logs]
    assert events.count("fallback_model_loading") == 2
    offload = next(e for e in logs if e["event"] == "vram_offload_triggered")
    assert offload["allocated_gb"] == 19.5 and offload["threshold_gb"] == 18.0
    assert set(offload["offloaded"]) == {"demo/mesh-generator", "demo/tiny-grounded-sam2"}
    assert not models.segmenter.loaded and not models.mesh_generator.loaded

    meter.value = 3.0  # under the threshold: the next fallback job reloads and keeps them
    with capture_logs() as logs:
        fallback_job("a dog")
    assert [e["event"] for e in logs].count("fallback_model_loading") == 2
    assert "vram_offload_triggered" not in [e["event"] for e in logs]
    assert models.segmenter.loaded and models.mesh_generator.loaded

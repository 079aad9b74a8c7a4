"""Whole jobs through `handle_job` on the tiny demo models (CPU, no downloads)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image
from structlog.testing import capture_logs

from visgate_worker import handler
from visgate_worker.concepts import TEMPLATES
from visgate_worker.geometry import decode_points
from visgate_worker.loading import LoadedModels, startup
from visgate_worker.models.partcrafter import PartCrafterParts
from visgate_worker.models.sources import LocalFolder

QUADRUPED = [slot.name for slot in TEMPLATES["quadruped"].parts]


def job(**inputs: Any) -> dict[str, Any]:
    return handler.handle_job({"id": "job-1", "input": inputs})


@pytest.fixture
def worker(demo_settings) -> LoadedModels:
    return startup(demo_settings())


def test_tiny_job_end_to_end_returns_named_parts_with_points(worker: LoadedModels) -> None:
    out = job(text="a small red fox", quality="standard")
    assert "error" not in out
    assert out["concept"] == "quadruped" and out["path"] == "primary" and out["cached"] is False
    assert [p["name"] for p in out["parts"]] == QUADRUPED
    anchors = {slot.name: slot.anchor for slot in TEMPLATES["quadruped"].parts}
    for part in out["parts"]:
        points = decode_points(part["points"])
        assert points.dtype == np.float32 and points.shape == (part["point_count"], 3)
        assert part["point_count"] == 2048 and part["face_count"] > 0
        assert np.abs(points).max() <= 1.0 + 1e-5
        # the stand-in returns its meshes shuffled: names come from where each part sits
        assert np.linalg.norm(points.mean(axis=0) - np.array(anchors[part["name"]])) < 0.2


def test_repeated_input_is_answered_from_the_cache(worker: LoadedModels) -> None:
    first = job(text="A small red fox", seed=3)
    again = job(text="  a SMALL   red fox ", seed=3)
    other_seed = job(text="a small red fox", seed=4)
    assert first["cached"] is False and again["cached"] is True
    assert again["parts"] == first["parts"]
    assert other_seed["cached"] is False


def test_glb_is_returned_when_asked(worker: LoadedModels) -> None:
    out = job(text="a parrot", num_parts=3, quality="fast", return_glb=True)
    scene = trimesh.load(io.BytesIO(base64.b64decode(out["glb"])), file_type="glb")
    assert set(scene.geometry) == {"head", "body", "wings"}
    assert "glb" not in job(text="a parrot", num_parts=3, quality="fast")


def test_image_is_returned_as_png_when_asked(worker: LoadedModels) -> None:
    out = job(text="a parrot", num_parts=3, quality="fast", return_image=True)
    assert out["image_format"] == "png"
    image = Image.open(io.BytesIO(base64.b64decode(out["image"])))
    assert image.format == "PNG" and image.size == (worker.model_set.image_size,) * 2
    plain = job(text="a parrot", num_parts=3, quality="fast")
    assert "image" not in plain and "image_format" not in plain


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 201}, "text"),
        ({"text": "12345"}, "text"),
        ({"text": "!!!"}, "text"),
        ({"text": " -- ?? "}, "text"),
        ({"text": "a cat", "quality": "ultra"}, "quality"),
        ({"text": "a cat", "num_parts": 0}, "num_parts"),
        ({"text": "a cat", "num_parts": 17}, "num_parts"),
        ({"text": "a cat", "num_parts": True}, "num_parts"),
        ({"text": "a cat", "num_parts": "3"}, "num_parts"),
        ({"text": "a cat", "num_parts": 3.0}, "num_parts"),
        ({"text": "a cat", "seed": "7"}, "seed"),
        ({"text": "a cat", "seed": 7.0}, "seed"),
        ({"text": "a cat", "seed": False}, "seed"),
        ({"warmup": True, "text": "a cat"}, "warmup"),
        ({"text": "a cat", "verb": "42"}, "verb"),
        ({"text": "a cat", "prompt": "a dog"}, "prompt"),
        ({}, "text"),
    ],
)
def test_bad_input_fails_the_job_with_the_field_named(
    worker: LoadedModels, job_input: dict[str, Any], field: str, job_error
) -> None:
    out = handler.handle_job({"id": "bad", "input": job_input})
    error = job_error(out)
    assert error["type"] == "ValidationError"
    assert [f["field"] for f in error["fields"]] == [field]
    assert field in error["message"]


def test_warmup_job_is_answered_ok_without_running_the_pipeline(worker: LoadedModels) -> None:
    class MustNotRun:
        def run(self, parsed: Any) -> dict[str, Any]:
            raise AssertionError("a warm-up must not reach the pipeline")

    handler._current.pipeline = MustNotRun()  # type: ignore[union-attr]
    assert handler.handle_job({"id": "w", "input": {"warmup": True}}) == {"warmup": "ok"}
    assert handler.handle_job({"id": "w2", "input": {"warmup": True}}) == {"warmup": "ok"}


@pytest.mark.parametrize(
    ("job_input", "fields"),
    [
        ({"warmup": 1}, {"text", "warmup"}),
        ({"warmup": False}, {"text", "warmup"}),
        ({"warmup": "true"}, {"text", "warmup"}),
    ],
)
def test_anything_else_than_the_exact_warmup_keeps_the_strict_schema(
    worker: LoadedModels, job_input: dict[str, Any], fields: set[str], job_error
) -> None:
    error = job_error(handler.handle_job({"id": "w", "input": job_input}))
    assert error["type"] == "ValidationError"
    assert {f["field"] for f in error["fields"]} == fields


def test_warmup_on_a_text_to_image_worker_too(demo_settings) -> None:
    startup(demo_settings(hf_model_id="stabilityai/sdxl-turbo"))
    assert handler.handle_job({"id": "w", "input": {"warmup": True}}) == {"warmup": "ok"}


def test_worker_keeps_serving_after_bad_input(worker: LoadedModels) -> None:
    assert "error" in handler.handle_job({"id": "x", "input": None})
    assert "error" in handler.handle_job({"id": "x", "input": ["not", "an", "object"]})
    assert job(text="a wooden chair", quality="fast")["concept"] == "furniture"


def test_fallback_path_labels_mesh_faces_when_partcrafter_decodes_nothing(
    worker: LoadedModels, tmp_path
) -> None:
    class UpstreamDouble:  # PartCrafter's pipeline where every part failed to decode
        device = "cpu"

        def __call__(self, **kwargs: Any) -> Any:
            return type("Out", (), {"meshes": [None] * len(kwargs["image"])})()

    parts = PartCrafterParts(
        "wgsxm/PartCrafter",
        LocalFolder(tmp_path, "partcrafter"),
        worker.device,
        factory=lambda path, device: UpstreamDouble(),
    )
    worker.model_set.part_generator = parts
    with capture_logs() as logs:
        out = job(text="a cat sitting", verb="sitting")
    assert out["path"] == "fallback"
    assert out["fallback_reason"].startswith("PartGenerationError")
    assert [p["name"] for p in out["parts"]] == QUADRUPED
    labelled = next(e for e in logs if e["event"] == "fallback_faces_labelled")
    assert labelled["from_masks"] > 0  # Grounded SAM 2 masks voted, not only the anchors
    assert sum(p["face_count"] for p in out["parts"]) == labelled["faces"]


def test_job_before_startup_is_refused_not_crashed(job_error) -> None:
    out = handler.handle_job({"id": "early", "input": {"text": "a cat"}})
    assert job_error(out)["type"] == "WorkerNotReadyError"


def test_plain_diffusers_model_id_serves_text_to_image(demo_settings, job_error) -> None:
    loaded = startup(demo_settings(hf_model_id="stabilityai/sdxl-turbo"))
    assert loaded.model_set.kind == "image"
    out = handler.handle_job({"id": "img", "input": {"prompt": "a cat", "width": 64, "height": 96}})
    image = Image.open(io.BytesIO(base64.b64decode(out["image"])))
    assert image.format == "PNG" and image.size == (64, 96)
    assert out["cached"] is False
    wrong = handler.handle_job({"id": "img", "input": {"text": "a cat"}})
    assert {f["field"] for f in job_error(wrong)["fields"]} == {"prompt", "text"}

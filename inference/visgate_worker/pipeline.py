"""The inference paths. 3D: text → image → PartCrafter parts (primary); when that fails or is
unavailable, Hunyuan3D-2 mesh → Grounded SAM 2 masks on rendered views → faces labelled per
part (fallback). Image: a plain text-to-image deployment. Callers hold the GPU lock.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import structlog
import trimesh

from visgate_worker import geometry
from visgate_worker.concepts import TEMPLATES, PartSlot, concept_of, part_slots
from visgate_worker.errors import PartGenerationError, WorkerError
from visgate_worker.labelling import label_faces, split_by_labels
from visgate_worker.model_set import ModelSet
from visgate_worker.render import render_views
from visgate_worker.schemas import QUALITY, ImageJobInput, PartsJobInput, QualityProfile
from visgate_worker.vram import VramMeter

log = structlog.get_logger(__name__)

NamedParts = list[tuple[PartSlot, trimesh.Trimesh | None]]


def build_prompt(text: str, verb: str | None) -> str:
    subject = f"{text} {verb}" if verb else text
    return f"{subject}, single object, full body, centered, plain white background, 3d render"


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def png_base64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class PartsPipeline:
    def __init__(self, models: ModelSet, meter: VramMeter, offload_threshold_gb: float) -> None:
        self.models = models
        self.meter = meter
        self.offload_threshold_gb = offload_threshold_gb

    def run(self, job: PartsJobInput) -> dict[str, Any]:
        started = time.perf_counter()
        concept = concept_of(job.text)
        slots = part_slots(TEMPLATES[concept], job.num_parts)
        profile = QUALITY[job.quality]
        size = self.models.image_size
        image = self.models.text_to_image.generate(
            build_prompt(job.text, job.verb),
            steps=profile.image_steps,
            width=size,
            height=size,
            seed=job.seed,
            guidance_scale=0.0,
        )
        timings = {"image": _ms(started)}
        fallback_reason = None
        step = time.perf_counter()
        try:
            parts = self._primary(image, slots, profile, job.seed)
            path = "primary"
        except Exception as exc:
            fallback_reason = f"{type(exc).__name__}: {exc}"
            log.warning("primary_path_failed", error=fallback_reason)
            parts = self._fallback(image, slots, profile, job.seed)
            path = "fallback"
        timings["parts"] = _ms(step)
        output = self._output(parts, profile, job)
        if job.return_image:
            # the picture the parts were made from: a client can show it beside the model
            output["image"] = png_base64(image)
            output["image_format"] = "png"
        timings["total"] = _ms(started)
        return {
            "concept": concept,
            "path": path,
            "fallback_reason": fallback_reason,
            **output,
            "seed": job.seed,
            "quality": job.quality,
            "demo": self.models.demo,
            "timings_ms": timings,
        }

    def _primary(
        self, image: Any, slots: list[PartSlot], profile: QualityProfile, seed: int
    ) -> NamedParts:
        generator = self.models.part_generator
        if generator is None:
            raise PartGenerationError("this model set has no part generator")
        meshes = generator.generate_parts(  # type: ignore[attr-defined]
            image, slots, steps=profile.part_steps, tokens=profile.part_tokens, seed=seed
        )
        return name_parts(meshes, slots)

    def _fallback(
        self, image: Any, slots: list[PartSlot], profile: QualityProfile, seed: int
    ) -> NamedParts:
        mesh_generator, segmenter = self.models.mesh_generator, self.models.segmenter
        if mesh_generator is None or segmenter is None:
            raise WorkerError("the primary path failed and this model set has no fallback")
        try:
            for model in (mesh_generator, segmenter):
                if not model.loaded:
                    log.info("fallback_model_loading", model=model.name)
                    model.load()
            mesh = mesh_generator.generate_mesh(image, steps=profile.mesh_steps, seed=seed)  # type: ignore[attr-defined]
            center, scale = geometry.fit_transform([mesh])
            mesh = mesh.copy()
            mesh.apply_translation(-center)
            mesh.apply_scale(scale)
            views = render_views(mesh, self.models.render_size, seed=seed)
            phrases = [slot.phrase for slot in slots]
            masks = [segmenter.segment(view.image, phrases) for view in views]  # type: ignore[attr-defined]
            anchors = np.array([slot.anchor for slot in slots])
            labels, voted = label_faces(mesh, views, masks, anchors, seed=seed)
            log.info("fallback_faces_labelled", faces=len(mesh.faces), from_masks=voted)
            return list(zip(slots, split_by_labels(mesh, labels, len(slots)), strict=True))
        finally:
            self._maybe_offload()

    def _maybe_offload(self) -> None:
        allocated = self.meter.allocated_gb()
        if allocated <= self.offload_threshold_gb:
            return
        released = [m.name for m in self.models.fallbacks if m.loaded]
        for model in self.models.fallbacks:
            model.unload()
        log.info(
            "vram_offload_triggered",
            allocated_gb=allocated,
            threshold_gb=self.offload_threshold_gb,
            offloaded=released,
            allocated_after_gb=self.meter.allocated_gb(),
        )

    def _output(
        self, parts: NamedParts, profile: QualityProfile, job: PartsJobInput
    ) -> dict[str, Any]:
        entries = []
        for index, (slot, mesh) in enumerate(parts):
            points = geometry.sample_points(mesh, profile.points_per_part, seed=job.seed + index)
            entries.append(
                {
                    "name": slot.name,
                    "face_count": 0 if mesh is None else len(mesh.faces),
                    "vertex_count": 0 if mesh is None else len(mesh.vertices),
                    "point_count": len(points),
                    "points": geometry.encode_points(points),
                    "bounds": None if mesh is None else np.round(mesh.bounds, 4).tolist(),
                }
            )
        output: dict[str, Any] = {"parts": entries, "points_encoding": geometry.POINTS_ENCODING}
        if job.return_glb and any(mesh is not None for _, mesh in parts):
            glb = geometry.export_glb([(slot.name, mesh) for slot, mesh in parts])
            output["glb"] = base64.b64encode(glb).decode("ascii")
        return output


def name_parts(meshes: Sequence[trimesh.Trimesh], slots: Sequence[PartSlot]) -> NamedParts:
    """Give unnamed part meshes their template names by position, in the anchors' frame; the
    output is moved into that frame too (the object fits [-1, 1]³). Meshes beyond the number of
    slots join the slot nearest to them."""
    center, scale = geometry.fit_transform(meshes)
    fitted = []
    for mesh in meshes:
        copy = mesh.copy()
        copy.apply_translation(-center)
        copy.apply_scale(scale)
        fitted.append(copy)
    centroids = np.array([m.bounds.mean(axis=0) for m in fitted])
    anchors = np.array([slot.anchor for slot in slots])
    assigned = geometry.assign_to_anchors(centroids, anchors)
    grouped: list[list[trimesh.Trimesh]] = [[] for _ in slots]
    for mesh, centroid, slot_index in zip(fitted, centroids, assigned, strict=True):
        if slot_index is None:
            slot_index = int(np.linalg.norm(anchors - centroid, axis=1).argmin())
        grouped[slot_index].append(mesh)
    return [
        (slot, trimesh.util.concatenate(group) if group else None)
        for slot, group in zip(slots, grouped, strict=True)
    ]


class ImagePipeline:
    """A plain diffusers deployment: prompt → PNG (base64)."""

    def __init__(self, models: ModelSet) -> None:
        self.models = models

    def run(self, job: ImageJobInput) -> dict[str, Any]:
        started = time.perf_counter()
        model = self.models.text_to_image
        distilled = model.default_guidance() == 0.0
        steps = job.num_inference_steps or (1 if distilled else 30)
        if self.models.demo:
            steps = job.num_inference_steps or 2
        width = job.width or self.models.image_size
        height = job.height or self.models.image_size
        image = model.generate(
            job.prompt,
            steps=steps,
            width=width,
            height=height,
            seed=job.seed,
            guidance_scale=job.guidance_scale,
        )
        return {
            "image": png_base64(image),
            "format": "png",
            "width": image.width,
            "height": image.height,
            "seed": job.seed,
            "num_inference_steps": steps,
            "model": model.name,
            "demo": self.models.demo,
            "timings_ms": {"total": _ms(started)},
        }

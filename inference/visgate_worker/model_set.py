"""Which models a worker serves, from `HF_MODEL_ID`: the 3D bundle (`lumen/3d-pipeline`) or a
plain diffusers text-to-image repo; real weights or the tiny demo set.

Demo or real, when `VISGATE_DEMO_MODELS` is unset: real weights already in MODEL_CACHE_DIR
always win; without them the demo set is used when the hub is off-limits (`HF_HUB_OFFLINE=1`)
or the worker runs as a local process (`visgate_worker.local`). A Runpod worker with an empty
cache downloads: it must never report ready on toy models by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import structlog

from visgate_worker import demo
from visgate_worker.models.base import ManagedModel
from visgate_worker.models.grounded_sam import DETECTOR_REPO, SAM2_REPO, GroundedSam2
from visgate_worker.models.hunyuan import ALLOW_PATTERNS, HUNYUAN_REPO, Hunyuan3DMesh
from visgate_worker.models.partcrafter import PARTCRAFTER_REPO, PartCrafterParts
from visgate_worker.models.runpod_cache import RunpodCached
from visgate_worker.models.sources import DiffusersSnapshot, HubSnapshot
from visgate_worker.models.stand_ins import StandInMeshGenerator, StandInPartGenerator
from visgate_worker.models.text_to_image import DiffusersTextToImage
from visgate_worker.settings import WorkerSettings
from visgate_worker.vram import Device

log = structlog.get_logger(__name__)

SDXL_TURBO_REPO = "stabilityai/sdxl-turbo"


@dataclass
class ModelSet:
    """The models of one worker. `kind` picks the job schema: `parts` (3D) or `image`."""

    model_id: str
    kind: Literal["parts", "image"]
    demo: bool
    text_to_image: DiffusersTextToImage
    part_generator: ManagedModel | None = None
    mesh_generator: ManagedModel | None = None
    segmenter: ManagedModel | None = None
    image_size: int = 512
    render_size: int = 512

    @property
    def primaries(self) -> list[ManagedModel]:
        models: list[ManagedModel | None] = [self.text_to_image, self.part_generator]
        return [m for m in models if m is not None]

    @property
    def fallbacks(self) -> list[ManagedModel]:
        return [m for m in (self.mesh_generator, self.segmenter) if m is not None]

    def loaded_names(self) -> list[str]:
        return [m.name for m in self.primaries + self.fallbacks if m.loaded]


def _token(settings: WorkerSettings) -> str | None:
    return settings.hf_token.get_secret_value() if settings.hf_token else None


def real_model_set(settings: WorkerSettings, device: Device) -> ModelSet:
    """Each repo is read from Runpod's model cache when it is complete there, and downloaded
    into MODEL_CACHE_DIR/hub otherwise."""
    hub = settings.model_cache_dir / "hub"
    runpod = settings.runpod_model_cache_dir
    token = _token(settings)
    if not settings.is_bundle:
        source = RunpodCached(
            settings.hf_model_id,
            runpod,
            DiffusersSnapshot(settings.hf_model_id, hub, token),
        )
        return ModelSet(
            model_id=settings.hf_model_id,
            kind="image",
            demo=False,
            text_to_image=DiffusersTextToImage(settings.hf_model_id, source, device),
        )
    hy3dgen_root = settings.model_cache_dir / "hy3dgen"
    return ModelSet(
        model_id=settings.hf_model_id,
        kind="parts",
        demo=False,
        text_to_image=DiffusersTextToImage(
            SDXL_TURBO_REPO,
            RunpodCached(
                SDXL_TURBO_REPO,
                runpod,
                DiffusersSnapshot(SDXL_TURBO_REPO, hub, token, variant="fp16"),
            ),
            device,
            variant="fp16",
        ),
        part_generator=PartCrafterParts(
            PARTCRAFTER_REPO,
            RunpodCached(PARTCRAFTER_REPO, runpod, HubSnapshot(PARTCRAFTER_REPO, hub, token)),
            device,
        ),
        mesh_generator=Hunyuan3DMesh(
            f"{HUNYUAN_REPO}:turbo",
            RunpodCached(
                HUNYUAN_REPO,
                runpod,
                HubSnapshot(
                    HUNYUAN_REPO,
                    hub,
                    token,
                    allow_patterns=ALLOW_PATTERNS,
                    local_dir=hy3dgen_root / HUNYUAN_REPO,
                ),
                # hy3dgen reads `$HY3DGEN_MODELS/tencent/Hunyuan3D-2/...`: a second root of
                # that layout, whose repo folder links to Runpod's snapshot
                link_as=settings.model_cache_dir / "hy3dgen-runpod" / HUNYUAN_REPO,
            ),
            device,
            models_root=hy3dgen_root,
        ),
        segmenter=GroundedSam2(
            f"{DETECTOR_REPO}+{SAM2_REPO}",
            RunpodCached(DETECTOR_REPO, runpod, HubSnapshot(DETECTOR_REPO, hub, token)),
            RunpodCached(SAM2_REPO, runpod, HubSnapshot(SAM2_REPO, hub, token)),
            device,
        ),
    )


def demo_model_set(settings: WorkerSettings, device: Device) -> ModelSet:
    """The tiny set; its folder is built when first fetched (see `demo.ensure_demo_models`)."""
    cache = settings.model_cache_dir
    text_to_image = DiffusersTextToImage(
        "demo/tiny-text-to-image", demo.DemoFolder(cache, demo.TEXT_TO_IMAGE), device
    )
    if not settings.is_bundle:
        return ModelSet(
            model_id=settings.hf_model_id,
            kind="image",
            demo=True,
            text_to_image=text_to_image,
            image_size=demo.IMAGE_SIZE,
        )
    return ModelSet(
        model_id=settings.hf_model_id,
        kind="parts",
        demo=True,
        text_to_image=text_to_image,
        part_generator=StandInPartGenerator(device),
        mesh_generator=StandInMeshGenerator(device),
        segmenter=GroundedSam2(
            "demo/tiny-grounded-sam2",
            demo.DemoFolder(cache, demo.DETECTOR),
            demo.DemoFolder(cache, demo.SAM2),
            device,
            box_threshold=0.0,  # random weights score low: take the best box anyway
            text_threshold=0.0,
        ),
        image_size=demo.IMAGE_SIZE,
        render_size=demo.RENDER_SIZE,
    )


def use_demo_models(settings: WorkerSettings, device: Device, *, local_entry: bool) -> bool:
    if settings.visgate_demo_models is not None:
        return settings.visgate_demo_models
    if all(m.is_cached() for m in real_model_set(settings, device).primaries):
        return False
    return local_entry or settings.hf_hub_offline


def select_model_set(settings: WorkerSettings, device: Device, *, local_entry: bool) -> ModelSet:
    if use_demo_models(settings, device, local_entry=local_entry):
        log.info("demo_models_selected", model_id=settings.hf_model_id)
        return demo_model_set(settings, device)
    return real_model_set(settings, device)

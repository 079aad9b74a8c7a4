"""PartCrafter (wgsxm/PartCrafter): one image → N part meshes in one pass (the primary path).

Not on PyPI: the image clones the repository at a pinned commit and puts it on PYTHONPATH, so its
pipeline is `src.pipelines.pipeline_partcrafter.PartCrafterPipeline`. The call mirrors the
repository's `scripts/inference_partcrafter.py` (N copies of the image, `num_parts` passed as an
attention kwarg; meshes that fail to decode come back as None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import trimesh
from PIL import Image

from visgate_worker.concepts import PartSlot
from visgate_worker.errors import PartGenerationError
from visgate_worker.models.base import ManagedModel
from visgate_worker.models.sources import Source
from visgate_worker.packages import require
from visgate_worker.vram import Device

PARTCRAFTER_REPO = "wgsxm/PartCrafter"
PIPELINE_MODULE = "src.pipelines.pipeline_partcrafter"
MAX_PARTS = 16  # the upstream script's limit

PipelineFactory = Callable[[Path, Device], Any]


def load_upstream_pipeline(path: Path, device: Device) -> Any:
    module = require(PIPELINE_MODULE, package="PartCrafter")
    pipe = module.PartCrafterPipeline.from_pretrained(str(path)).to(device.name, device.dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class PartCrafterParts(ManagedModel):
    role = "part_generator"

    def __init__(
        self,
        name: str,
        source: Source,
        device: Device,
        *,
        factory: PipelineFactory = load_upstream_pipeline,
        guidance_scale: float = 7.0,
    ) -> None:
        super().__init__(name, [source], device)
        self._factory = factory
        self._guidance = guidance_scale
        self._pipe: Any = None

    def _build(self, paths: list[Path]) -> None:
        self._pipe = self._factory(paths[0], self.device)

    def _drop(self) -> None:
        self._pipe = None

    def generate_parts(
        self, image: Image.Image, slots: Sequence[PartSlot], *, steps: int, tokens: int, seed: int
    ) -> list[trimesh.Trimesh]:
        self._require_loaded()
        num_parts = min(len(slots), MAX_PARTS)
        generator = torch.Generator(device=getattr(self._pipe, "device", "cpu")).manual_seed(seed)
        output = self._pipe(
            image=[image.convert("RGB")] * num_parts,
            attention_kwargs={"num_parts": num_parts},
            num_tokens=tokens,
            num_inference_steps=steps,
            guidance_scale=self._guidance,
            generator=generator,
            max_num_expanded_coords=int(1e9),
            use_flash_decoder=False,
        )
        meshes = [m for m in output.meshes if m is not None and len(m.faces) > 0]
        if not meshes:
            raise PartGenerationError(f"PartCrafter decoded none of the {num_parts} parts")
        return meshes

"""Hunyuan3D-2 Turbo (`hy3dgen.shapegen`): image → one untextured mesh (the fallback path).

hy3dgen looks for `$HY3DGEN_MODELS/<repo>/<subfolder>` before it downloads, and its turbo setup
(`enable_flashvdm`) fetches the matching turbo VAE by repo name. Pre-fetching both subfolders
into that layout keeps the load offline and under MODEL_CACHE_DIR.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from PIL import Image

from visgate_worker.errors import MeshGenerationError
from visgate_worker.models.base import ManagedModel
from visgate_worker.models.sources import Source
from visgate_worker.packages import require
from visgate_worker.vram import Device

HUNYUAN_REPO = "tencent/Hunyuan3D-2"
DIT_SUBFOLDER = "hunyuan3d-dit-v2-0-turbo"
VAE_SUBFOLDER = "hunyuan3d-vae-v2-0-turbo"
ALLOW_PATTERNS = tuple(
    f"{sub}/{name}"
    for sub in (DIT_SUBFOLDER, VAE_SUBFOLDER)
    for name in ("config.yaml", "model.fp16.safetensors")
)

PipelineFactory = Callable[[Path, Device], Any]


def load_upstream_pipeline(models_root: Path, device: Device) -> Any:
    os.environ["HY3DGEN_MODELS"] = str(models_root)
    shapegen = require("hy3dgen.shapegen", package="hy3dgen")
    pipe = shapegen.Hunyuan3DDiTFlowMatchingPipeline.from_pretrained(
        HUNYUAN_REPO,
        subfolder=DIT_SUBFOLDER,
        use_safetensors=True,
        variant="fp16",
        device=device.name,
        dtype=device.dtype,
    )
    pipe.enable_flashvdm()
    return pipe


def white_to_alpha(image: Image.Image, threshold: int = 240) -> Image.Image:
    """The prompt asks for a plain white background; make it transparent so hy3dgen's
    recentering crops to the object (no background-removal model needed)."""
    rgb = np.asarray(image.convert("RGB"))
    alpha = np.where((rgb >= threshold).all(axis=-1), 0, 255).astype(np.uint8)
    if not alpha.any():  # nothing but background: keep the whole frame
        alpha[:] = 255
    return Image.fromarray(np.dstack([rgb, alpha]))


class Hunyuan3DMesh(ManagedModel):
    role = "mesh_generator"

    def __init__(
        self,
        name: str,
        source: Source,
        device: Device,
        *,
        models_root: Path,
        factory: PipelineFactory = load_upstream_pipeline,
        octree_resolution: int = 380,
    ) -> None:
        super().__init__(name, [source], device)
        self.models_root = models_root
        self._factory = factory
        self._octree = octree_resolution
        self._pipe: Any = None

    def _build(self, paths: list[Path]) -> None:
        self._pipe = self._factory(self._root_for(paths[0]), self.device)

    def _root_for(self, files: Path) -> Path:
        """`models_root`, unless the files were fetched into another root of hy3dgen's layout
        (`<root>/tencent/Hunyuan3D-2`, e.g. the link to Runpod's model cache)."""
        if files.parts[-2:] == tuple(HUNYUAN_REPO.split("/")):
            return files.parents[1]
        return self.models_root

    def _drop(self) -> None:
        self._pipe = None

    def generate_mesh(self, image: Image.Image, *, steps: int, seed: int) -> trimesh.Trimesh:
        self._require_loaded()
        result = self._pipe(
            image=white_to_alpha(image),
            num_inference_steps=steps,
            octree_resolution=self._octree,
            num_chunks=20000,
            generator=torch.manual_seed(seed),
            output_type="trimesh",
        )
        mesh = result[0] if isinstance(result, list | tuple) else result
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            raise MeshGenerationError("Hunyuan3D-2 produced no mesh")
        return mesh

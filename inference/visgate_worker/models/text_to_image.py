"""Text → image with any diffusers text-to-image pipeline (SDXL Turbo in the 3D bundle, or the
plain hub id a user deployed), loaded through `AutoPipelineForText2Image`."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from visgate_worker.models.base import ManagedModel
from visgate_worker.models.sources import Source
from visgate_worker.packages import require
from visgate_worker.vram import Device

# Distilled models are made to run without classifier-free guidance.
_GUIDANCE_FREE = ("turbo", "schnell", "lightning", "lcm", "hyper")


class DiffusersTextToImage(ManagedModel):
    role = "text_to_image"

    def __init__(
        self, name: str, source: Source, device: Device, *, variant: str | None = None
    ) -> None:
        super().__init__(name, [source], device)
        self.variant = variant
        self._pipe = None

    def _build(self, paths: list[Path]) -> None:
        diffusers = require("diffusers", package="diffusers")
        kwargs = {"torch_dtype": self.device.dtype, "local_files_only": True}
        if self.variant:
            kwargs["variant"] = self.variant
        pipe = diffusers.AutoPipelineForText2Image.from_pretrained(str(paths[0]), **kwargs)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(self.device.name)

    def _drop(self) -> None:
        self._pipe = None

    def default_guidance(self) -> float | None:
        """0.0 for distilled (turbo-style) models; otherwise the pipeline's own default."""
        return 0.0 if any(word in self.name.lower() for word in _GUIDANCE_FREE) else None

    def generate(
        self,
        prompt: str,
        *,
        steps: int,
        width: int,
        height: int,
        seed: int,
        guidance_scale: float | None = None,
    ) -> Image.Image:
        self._require_loaded()
        assert self._pipe is not None
        guidance = guidance_scale if guidance_scale is not None else self.default_guidance()
        extra = {} if guidance is None else {"guidance_scale": guidance}
        result = self._pipe(
            prompt=prompt,
            num_inference_steps=steps,
            width=width,
            height=height,
            generator=torch.Generator(device="cpu").manual_seed(seed),
            **extra,
        )
        return result.images[0]  # type: ignore[no-any-return]

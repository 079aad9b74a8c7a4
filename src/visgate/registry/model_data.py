"""The model spec registry: measured numbers that beat the hub estimate. Plain data.

To add a model: append a `ModelSpec` with its VRAM to provision (GB, decimal), the tasks
it serves, whether its hub repo is gated, and where the figure comes from. Ids match the
hub case-insensitively. A bundle lists its stages; each component is checked on the hub.
"""

from __future__ import annotations

from visgate.registry.specs import ComponentSpec, ModelSpec, StageSpec

BUNDLE_ID = "lumen/3d-pipeline"

_FLUX_SOURCE = (
    "Diffusers FLUX docs (https://huggingface.co/docs/diffusers/api/pipelines/flux): 12B "
    "transformer + T5-XXL (4.7B) + CLIP-L + VAE, about 33.7 GB of bf16 weights in the "
    "diffusers folders; kept fully on the GPU that needs about 40 GB (a 48 GB card), "
    "about 24 GB only with CPU offload, which the worker does not use."
)

MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        model_id="black-forest-labs/FLUX.1-schnell",
        vram_gb=40.0,
        weights_gb=33.7,
        tasks=("text-to-image",),
        gated=True,
        ready_seconds=600,
        source=_FLUX_SOURCE
        + " Gated on the hub since 2025: https://huggingface.co/black-forest-labs/FLUX.1-schnell",
    ),
    ModelSpec(
        model_id="black-forest-labs/FLUX.1-dev",
        vram_gb=40.0,
        weights_gb=33.7,
        tasks=("text-to-image",),
        gated=True,
        ready_seconds=600,
        source=_FLUX_SOURCE
        + " Gated (license acceptance): https://huggingface.co/black-forest-labs/FLUX.1-dev",
    ),
    ModelSpec(
        model_id="stabilityai/sdxl-turbo",
        vram_gb=10.0,
        weights_gb=6.9,
        tasks=("text-to-image", "image-to-image"),
        ready_seconds=240,
        source=(
            "https://huggingface.co/stabilityai/sdxl-turbo: SDXL distilled, 3.5B parameters "
            "(2.6B UNet + 0.8B text encoders), fp16 variant 6.9 GB; 8-12 GB to serve at "
            "512x512 in 1-4 steps (Lumen measurement, with the VAE decode spike)."
        ),
    ),
    ModelSpec(
        model_id=BUNDLE_ID,
        vram_gb=21.7,
        tasks=("text-to-3d",),
        kind="bundle",
        ready_seconds=600,
        stages=(
            StageSpec(
                "primary",
                11.2,
                (
                    ComponentSpec("stabilityai/sdxl-turbo", "text-to-image"),
                    ComponentSpec("wgsxm/PartCrafter", "image-to-part-meshes"),
                ),
            ),
            StageSpec(
                "fallback-shape",
                6.0,
                (
                    ComponentSpec(
                        "tencent/Hunyuan3D-2",
                        "image-to-3d shape (turbo DiT, 1.1B)",
                        subfolder="hunyuan3d-dit-v2-0-turbo",
                    ),
                ),
            ),
            StageSpec(
                "fallback-segmentation",
                4.5,
                (
                    ComponentSpec(
                        "IDEA-Research/grounding-dino-tiny", "open-vocabulary part detection"
                    ),
                    ComponentSpec("facebook/sam2.1-hiera-large", "part segmentation"),
                ),
            ),
        ),
        worker_env={"EAGER_LOAD_ALL": "true", "VRAM_OFFLOAD_THRESHOLD_GB": "18"},
        source=(
            "Lumen 3D deployment, measured on a 24 GB L4: SDXL Turbo + PartCrafter 11.2 GB "
            "together (primary path); Hunyuan3D-2 Turbo shape about 6 GB (6 GB shape-only per "
            "https://github.com/Tencent/Hunyuan3D-2); Grounded SAM 2 (Grounding DINO tiny, "
            "https://github.com/IDEA-Research/Grounded-SAM-2, + SAM 2.1 hiera-large) about "
            "4.5 GB. 21.7 GB with all four eager-loaded, hence a 24 GB card; the worker "
            "offloads fallback models past 18 GB allocated."
        ),
        notes=(
            "A deployable name, not a hub repo: text -> SDXL Turbo image -> PartCrafter part "
            "meshes, with Hunyuan3D-2 Turbo + Grounded SAM 2 as the fallback path."
        ),
    ),
)

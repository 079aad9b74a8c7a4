"""The fake hub's default models: the registry's models and bundle components, plus a
plain LLM and a plain diffusers repo. File sizes approximate the real repos (2026); tests
that assert exact numbers seed their own models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.hub_state import FakeHubState

VALID_TOKEN = "hf_fake_reader_token"  # a valid token without access to gated repos
GATED_ACCESS_TOKEN = "hf_fake_gated_access_token"  # accepted FLUX's conditions
INVALID_TOKEN = "hf_fake_revoked_token"

GB = 1_000_000_000


def _diffusers_files(components: dict[str, float], *, fp16_copies: bool) -> list[tuple[str, int]]:
    """`model_index.json` plus one weights file per component folder (and its fp16 twin)."""
    files = [("model_index.json", 600)]
    for path, gb in components.items():
        files.append((f"{path}.safetensors", int(gb * GB)))
        if fp16_copies:
            files.append((f"{path}.fp16.safetensors", int(gb * GB / 2)))
    return files


def seed_default_models(state: FakeHubState) -> None:
    """The registry's models and bundle components, plus a plain LLM and a plain diffusers repo."""
    sdxl = _diffusers_files(
        {
            "unet/diffusion_pytorch_model": 10.27,
            "text_encoder/model": 0.492,
            "text_encoder_2/model": 2.78,
            "vae/diffusion_pytorch_model": 0.335,
        },
        fp16_copies=True,
    )
    state.add_model(
        "stabilityai/sdxl-turbo",
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=["diffusers", "safetensors", "text-to-image"],
        siblings=[
            *sdxl,
            ("sd_xl_turbo_1.0.safetensors", int(13.9 * GB)),
            ("sd_xl_turbo_1.0_fp16.safetensors", int(6.94 * GB)),
        ],
    )
    for variant, gated in (("schnell", "auto"), ("dev", "manual")):
        flux = _diffusers_files(
            {
                "transformer/diffusion_pytorch_model-00001-of-00003": 9.98,
                "transformer/diffusion_pytorch_model-00002-of-00003": 9.95,
                "transformer/diffusion_pytorch_model-00003-of-00003": 3.87,
                "text_encoder/model": 0.246,
                "text_encoder_2/model-00001-of-00002": 4.99,
                "text_encoder_2/model-00002-of-00002": 4.53,
                "vae/diffusion_pytorch_model": 0.168,
            },
            fp16_copies=False,
        )
        state.add_model(
            f"black-forest-labs/FLUX.1-{variant}",
            gated=gated,
            library_name="diffusers",
            pipeline_tag="text-to-image",
            tags=["diffusers", "safetensors", "text-to-image"],
            # The hub's safetensors metadata covers the root transformer-only checkpoint.
            parameters={"BF16": 11_901_408_320},
            siblings=[
                *flux,
                (f"flux1-{variant}.safetensors", int(23.8 * GB)),
                ("ae.safetensors", int(0.335 * GB)),
            ],
            tokens_with_access={GATED_ACCESS_TOKEN},
        )
    state.add_model(
        "wgsxm/PartCrafter",
        pipeline_tag="image-to-3d",
        tags=["partcrafter", "3d-generation", "image-to-3d"],
        siblings=[
            ("model_index.json", 500),
            ("transformer/diffusion_pytorch_model.safetensors", int(3.2 * GB)),
            ("vae/diffusion_pytorch_model.safetensors", int(0.4 * GB)),
            ("image_encoder_dinov2/model.safetensors", int(1.2 * GB)),
        ],
    )
    state.add_model(
        "tencent/Hunyuan3D-2",
        library_name="hunyuan3d-2",
        pipeline_tag="image-to-3d",
        tags=["image-to-3d", "text-to-3d"],
        siblings=[
            ("hunyuan3d-dit-v2-0-turbo/config.yaml", 2_000),
            ("hunyuan3d-dit-v2-0-turbo/model.fp16.safetensors", int(4.93 * GB)),
            ("hunyuan3d-dit-v2-0-turbo/model.fp16.ckpt", int(4.93 * GB)),
            ("hunyuan3d-vae-v2-0-turbo/model.fp16.safetensors", int(0.33 * GB)),
        ],
    )
    state.add_model(
        "IDEA-Research/grounding-dino-tiny",
        library_name="transformers",
        pipeline_tag="zero-shot-object-detection",
        parameters={"F32": 172_249_090},
        siblings=[("config.json", 6_000), ("model.safetensors", 689_000_000)],
    )
    state.add_model(
        "facebook/sam2.1-hiera-large",
        library_name="sam2",
        pipeline_tag="mask-generation",
        siblings=[("config.json", 1_000), ("sam2.1_hiera_large.pt", 898_000_000)],
    )
    state.add_model(
        "Qwen/Qwen2.5-0.5B-Instruct",
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["transformers", "safetensors", "text-generation", "conversational"],
        parameters={"BF16": 494_032_768},
        siblings=[("config.json", 700), ("model.safetensors", 988_097_824)],
    )
    state.add_model(
        "segmind/SSD-1B",
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=["diffusers", "safetensors", "text-to-image"],
        siblings=_diffusers_files(
            {
                "unet/diffusion_pytorch_model": 5.3,
                "text_encoder/model": 0.492,
                "text_encoder_2/model": 2.78,
                "vae/diffusion_pytorch_model": 0.335,
            },
            fp16_copies=True,
        ),
    )

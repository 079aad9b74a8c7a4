"""The worker's environment, parsed once: env names are part of the contract (README, "The worker callback")."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLE_ID = "lumen/3d-pipeline"


class WorkerSettings(BaseSettings):
    """What a Runpod template (or the local provider) hands the worker."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True, frozen=True)

    hf_model_id: str = Field(
        BUNDLE_ID, description="`lumen/3d-pipeline`, or a diffusers text-to-image hub id."
    )
    visgate_webhook: str | None = Field(
        None, description="Callback URL; unset means plain local use: no callbacks."
    )
    visgate_callback_token: SecretStr | None = Field(
        None, description="Sent as `Authorization: Bearer` on callbacks."
    )
    hf_token: SecretStr | None = Field(None, description="For gated or private hub repos.")
    eager_load_all: bool = Field(False, description="Load the fallback models at start-up too.")
    vram_offload_threshold_gb: float = Field(
        18.0, gt=0, description="Above this allocated VRAM, fallback models are released."
    )
    model_cache_dir: Path = Field(
        Path.home() / ".cache" / "visgate-worker",
        description="Hub downloads and the demo models live here.",
    )
    runpod_model_cache_dir: Path = Field(
        Path("/runpod-volume/huggingface-cache/hub"),
        description="Runpod's cached models (hub cache layout): read first, never written.",
    )
    visgate_demo_models: bool | None = Field(
        None,
        description="1: tiny built-in models; 0: real weights; unset: decided at start-up.",
    )
    hf_hub_offline: bool = Field(False, description="Standard hub variable: never download.")
    visgate_result_cache_size: int = Field(
        32, ge=0, description="Results kept for repeated inputs (0 turns the cache off)."
    )
    torch_num_threads: int | None = Field(None, ge=1, description="CPU threads for torch.")
    log_level: str = Field("info", description="debug, info, warning or error.")

    @property
    def is_bundle(self) -> bool:
        return self.hf_model_id == BUNDLE_ID

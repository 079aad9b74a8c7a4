"""Start-up: pick the model set, fetch and load the primary models, optionally the fallbacks,
and tell the control plane how it went (README, "The worker callback"). Usable without the runpod SDK."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import torch

from visgate_worker import handler
from visgate_worker.callback import CallbackClient, NullCallback, callback_for
from visgate_worker.errors import ModelLoadError
from visgate_worker.log import redact_text, register_secrets
from visgate_worker.model_set import ModelSet, select_model_set
from visgate_worker.models.base import ManagedModel
from visgate_worker.models.runpod_cache import cached_labels, describe
from visgate_worker.settings import WorkerSettings
from visgate_worker.vram import Device, TorchVramMeter, VramMeter, pick_device

log = structlog.get_logger(__name__)


@dataclass
class LoadedModels:
    """What start-up loaded, as reported in the `ready` callback."""

    model_set: ModelSet
    models_loaded: list[str]
    vram_allocated_gb: float
    gpu: str
    device: Device

    @property
    def demo(self) -> bool:
        return self.model_set.demo


def startup(
    settings: WorkerSettings | None = None,
    *,
    local_entry: bool = False,
    model_set: ModelSet | None = None,
    callback: CallbackClient | NullCallback | None = None,
    meter: VramMeter | None = None,
    device: Device | None = None,
) -> LoadedModels:
    """Load models, report `ready` (or `failed`, then raise), and install the job handler.

    `local_entry=True` lets an empty model cache fall back to the demo models; the keyword
    arguments replace the environment's collaborators (tests, benchmarks).
    """
    settings = settings or WorkerSettings()
    secrets = (settings.hf_token, settings.visgate_callback_token)
    register_secrets(s.get_secret_value() for s in secrets if s is not None)
    if settings.torch_num_threads:
        torch.set_num_threads(settings.torch_num_threads)
    device = device or pick_device()
    meter = meter or TorchVramMeter()
    if callback is None:
        token = settings.visgate_callback_token
        callback = callback_for(
            settings.visgate_webhook, token.get_secret_value() if token else None
        )
    log.info("worker_starting", model_id=settings.hf_model_id, device=device.name)
    try:
        models = model_set or select_model_set(settings, device, local_entry=local_entry)
        load_primaries(models, callback)
    except Exception as exc:
        message = redact_text(f"{getattr(exc, 'type', type(exc).__name__)}: {exc}")[:4000]
        log.error("primary_model_load_failed", error=message)
        callback.send("failed", error=message)
        raise ModelLoadError(message) from exc
    if settings.eager_load_all:
        load_fallbacks_eagerly(models, callback)
    loaded = LoadedModels(
        model_set=models,
        models_loaded=models.loaded_names(),
        vram_allocated_gb=meter.allocated_gb(),
        gpu=meter.gpu_name(),
        device=device,
    )
    handler.install(models, meter=meter, settings=settings)
    callback.send(
        "ready",
        models_loaded=loaded.models_loaded,
        vram_allocated_gb=loaded.vram_allocated_gb,
        gpu=loaded.gpu,
    )
    log.info(
        "worker_ready",
        models_loaded=loaded.models_loaded,
        vram_allocated_gb=loaded.vram_allocated_gb,
        gpu=loaded.gpu,
        demo=models.demo,
    )
    return loaded


def load_primaries(models: ModelSet, callback: CallbackClient | NullCallback) -> None:
    missing = [m for m in models.primaries if not m.is_cached()]
    if missing:
        names = ", ".join(m.name for m in missing)
        callback.send("downloading_model", message=f"fetching {names}")
        for model in missing:
            model.fetch()
    callback.send("loading_model", message=f"loading {_names(models.primaries)}")
    for model in models.primaries:
        model.load()


def load_fallbacks_eagerly(models: ModelSet, callback: CallbackClient | NullCallback) -> None:
    """A fallback that fails here stays lazy: the next fallback job tries again.

    `ready` waits for these, so a download here is announced like the primaries' one: without
    it the control plane's log would show nothing for the minutes the weights take.
    """
    missing = [m for m in models.fallbacks if not m.is_cached()]
    if missing:
        names = ", ".join(m.name for m in missing)
        callback.send("downloading_model", message=f"fetching fallback {names}")
    from_cache = [m for m in models.fallbacks if cached_labels(m.sources)]
    if from_cache:
        callback.send("loading_model", message=f"loading fallback {_names(from_cache)}")
    for model in models.fallbacks:
        try:
            model.load()
        except Exception as exc:
            log.warning(
                "fallback_model_eager_load_failed",
                model=model.name,
                error=redact_text(f"{getattr(exc, 'type', type(exc).__name__)}: {exc}"),
            )


def _names(models: list[ManagedModel]) -> str:
    """Model names for a progress message, each saying whether it comes from Runpod's cache:
    `loading stabilityai/sdxl-turbo from Runpod's model cache (no download), wgsxm/PartCrafter`."""
    return ", ".join(describe(m.name, m.sources) for m in models)

"""Start-up: loading order, the callbacks a control plane receives, and what failures report."""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
import torch
from structlog.testing import capture_logs
from tenacity import wait_fixed

from visgate_worker import handler
from visgate_worker.callback import CallbackClient
from visgate_worker.errors import ModelLoadError
from visgate_worker.loading import startup
from visgate_worker.log import redact, register_secrets
from visgate_worker.model_set import demo_model_set
from visgate_worker.models.base import ManagedModel
from visgate_worker.models.hunyuan import Hunyuan3DMesh
from visgate_worker.models.partcrafter import PartCrafterParts
from visgate_worker.models.sources import LocalFolder
from visgate_worker.vram import pick_device


def fast_callback(url: str, token: str = "tok-123", attempts: int = 5) -> CallbackClient:  # noqa: S107
    return CallbackClient(url, token, attempts=attempts, wait=wait_fixed(0.01))


def test_first_start_builds_demo_models_and_reports_progress_then_ready(
    tmp_path: Path, callback_receiver, demo_settings
) -> None:
    settings = demo_settings(
        model_cache_dir=tmp_path,
        visgate_webhook=callback_receiver.url,
        visgate_callback_token="tok-123",  # noqa: S106
        eager_load_all=True,
    )
    loaded = startup(settings)
    assert callback_receiver.statuses() == ["downloading_model", "loading_model", "ready"]
    assert all(r.headers["Authorization"] == "Bearer tok-123" for r in callback_receiver.received)
    ready = callback_receiver.received[-1].body
    assert (
        ready["models_loaded"]
        == loaded.models_loaded
        == [
            "demo/tiny-text-to-image",
            "demo/part-generator",
            "demo/mesh-generator",
            "demo/tiny-grounded-sam2",
        ]
    )
    assert ready["vram_allocated_gb"] == 0.0 and ready["gpu"] == "cpu"
    assert (tmp_path / "demo" / "v1" / "READY").exists()

    callback_receiver.received.clear()
    startup(settings)  # second start: the built models are reused, nothing to "download"
    assert callback_receiver.statuses() == ["loading_model", "ready"]


def test_without_eager_load_only_primaries_are_loaded(demo_settings) -> None:
    loaded = startup(demo_settings())
    assert loaded.models_loaded == ["demo/tiny-text-to-image", "demo/part-generator"]
    assert not loaded.model_set.segmenter.loaded


def test_callback_is_retried_until_the_receiver_accepts(callback_receiver, demo_settings) -> None:
    callback_receiver.answers = [500, 503, 429]  # then 200
    startup(demo_settings(), callback=fast_callback(callback_receiver.url))
    assert callback_receiver.statuses() == ["loading_model"] * 4 + ["ready"]


def test_rejected_callback_is_not_retried_and_the_worker_still_serves(
    callback_receiver, demo_settings
) -> None:
    callback_receiver.answers = [401]
    with capture_logs() as logs:
        startup(demo_settings(), callback=fast_callback(callback_receiver.url))
    assert callback_receiver.statuses() == ["loading_model", "ready"]
    assert any(e["event"] == "callback_rejected" for e in logs)
    out = handler.handle_job({"id": "j", "input": {"text": "a dog", "quality": "fast"}})
    assert out["concept"] == "quadruped"


def test_primary_that_cannot_load_reports_failed_naming_the_package(
    tmp_path: Path, callback_receiver, demo_settings, job_error
) -> None:
    settings = demo_settings()
    models = demo_model_set(settings, pick_device())
    models.part_generator = PartCrafterParts(
        "wgsxm/PartCrafter", LocalFolder(tmp_path, "weights"), pick_device()
    )
    with pytest.raises(ModelLoadError):
        startup(settings, model_set=models, callback=fast_callback(callback_receiver.url))
    assert callback_receiver.statuses() == ["loading_model", "failed"]
    error = callback_receiver.received[-1].body["error"]
    assert error.startswith("MissingPackageError: PartCrafter is not installed")
    assert "src.pipelines.pipeline_partcrafter" in error
    assert "github.com/wgsxm/PartCrafter" in error
    assert job_error(handler.handle_job({"id": "j", "input": {"text": "a cat"}}))["type"] == (
        "WorkerNotReadyError"
    )


def test_fallback_that_cannot_load_stays_lazy_and_worker_reports_ready(
    tmp_path: Path, callback_receiver, demo_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path))  # the adapter sets it; restore after
    settings = demo_settings(eager_load_all=True)
    models = demo_model_set(settings, pick_device())
    models.mesh_generator = Hunyuan3DMesh(
        "tencent/Hunyuan3D-2:turbo",
        LocalFolder(tmp_path, "weights"),
        pick_device(),
        models_root=tmp_path,
    )
    with capture_logs() as logs:
        loaded = startup(settings, model_set=models, callback=fast_callback(callback_receiver.url))
    failed = [e for e in logs if e["event"] == "fallback_model_eager_load_failed"]
    assert len(failed) == 1 and failed[0]["model"] == "tencent/Hunyuan3D-2:turbo"
    assert "hy3dgen" in failed[0]["error"]
    assert callback_receiver.statuses()[-1] == "ready"
    assert "tencent/Hunyuan3D-2:turbo" not in loaded.models_loaded
    assert "demo/tiny-grounded-sam2" in loaded.models_loaded
    ok = handler.handle_job({"id": "j", "input": {"text": "a horse", "quality": "fast"}})
    assert ok["path"] == "primary"


def test_secrets_are_masked_in_failure_reports_and_log_lines(
    tmp_path: Path, callback_receiver, demo_settings
) -> None:
    secret = "hf_exampleSecretValue123"  # noqa: S105
    settings = demo_settings(hf_token=secret)
    models = demo_model_set(settings, pick_device())

    class LeakySource:  # an upstream error that quotes the token it was given
        label = "leaky"

        def is_cached(self) -> bool:
            return True

        def fetch(self) -> Path:
            raise ModelLoadError(f"401 for url with token={secret}")

    models.text_to_image.sources = [LeakySource()]
    with pytest.raises(ModelLoadError) as raised:
        startup(settings, model_set=models, callback=fast_callback(callback_receiver.url))
    error = callback_receiver.received[-1].body["error"]
    assert secret not in error and "[redacted]" in error
    assert secret not in str(raised.value)

    register_secrets([secret])
    line = redact(None, "info", {"event": "x", "detail": f"got {secret}", "hf_token": "abc"})
    assert line == {"event": "x", "detail": "got [redacted]", "hf_token": "[redacted]"}


class _FirstFetchSource:
    """A model source that is not on disk until fetched (a hub download, without the hub)."""

    label = "fake/fallback-weights"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fetches = 0

    def is_cached(self) -> bool:
        return self.fetches > 0

    def fetch(self) -> Path:
        self.fetches += 1
        return self.path


def test_eager_fallback_download_is_announced_before_ready(
    tmp_path: Path, callback_receiver, demo_settings
) -> None:
    settings = demo_settings(eager_load_all=True)
    models = demo_model_set(settings, pick_device())
    source = _FirstFetchSource(tmp_path)
    models.mesh_generator.sources = [source]  # type: ignore[union-attr]
    loaded = startup(settings, model_set=models, callback=fast_callback(callback_receiver.url))
    assert callback_receiver.statuses() == ["loading_model", "downloading_model", "ready"]
    message = callback_receiver.received[1].body["message"]
    assert "demo/mesh-generator" in message and "fallback" in message
    assert source.fetches == 1 and "demo/mesh-generator" in loaded.models_loaded


def test_a_model_whose_build_fails_half_way_keeps_none_of_it(tmp_path: Path) -> None:
    built: list[weakref.ref[torch.Tensor]] = []

    class HalfBuilt(ManagedModel):
        def _build(self, paths: list[Path]) -> None:
            weights = torch.zeros(1 << 16)  # a local too: the traceback would keep it alive
            built.append(weakref.ref(weights))
            self._weights: torch.Tensor | None = weights
            raise RuntimeError("the second checkpoint is corrupt")

        def _drop(self) -> None:
            self._weights = None

    model = HalfBuilt("half", [LocalFolder(tmp_path, "weights")], pick_device())
    with pytest.raises(ModelLoadError, match="second checkpoint is corrupt") as raised:
        model.load()
    assert not model.loaded
    # nothing holds the half-built weights, not even the error that is still being handled
    assert raised.value.__cause__ is not None
    assert built[0]() is None

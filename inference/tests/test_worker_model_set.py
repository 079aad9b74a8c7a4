"""Which models a worker serves: bundle or plain id, demo or real weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from visgate_worker.model_set import real_model_set, select_model_set, use_demo_models
from visgate_worker.settings import WorkerSettings
from visgate_worker.vram import pick_device


def test_bundle_id_maps_to_the_3d_pipeline_components(tmp_path: Path) -> None:
    models = real_model_set(WorkerSettings(model_cache_dir=tmp_path), pick_device())
    assert models.kind == "parts"
    assert [m.name for m in models.primaries] == ["stabilityai/sdxl-turbo", "wgsxm/PartCrafter"]
    assert [m.name for m in models.fallbacks] == [
        "tencent/Hunyuan3D-2:turbo",
        "IDEA-Research/grounding-dino-tiny+facebook/sam2.1-hiera-large",
    ]


def test_plain_hub_id_is_a_single_text_to_image_model(tmp_path: Path) -> None:
    settings = WorkerSettings(model_cache_dir=tmp_path, hf_model_id="stabilityai/sdxl-turbo")
    models = real_model_set(settings, pick_device())
    assert models.kind == "image" and models.fallbacks == []
    assert [m.name for m in models.primaries] == ["stabilityai/sdxl-turbo"]


@pytest.mark.parametrize(
    ("env", "local_entry", "demo"),
    [
        ({}, False, False),  # a Runpod worker with an empty cache downloads real weights
        ({}, True, True),  # PROVIDER=local with an empty cache: the demo set
        ({"hf_hub_offline": True}, False, True),  # no hub, no weights: the demo set
        ({"visgate_demo_models": False}, True, False),
        ({"visgate_demo_models": True}, False, True),
    ],
)
def test_demo_models_are_used_only_when_asked_or_nothing_else_can_run(
    tmp_path: Path, env: dict[str, bool], local_entry: bool, demo: bool
) -> None:
    settings = WorkerSettings(model_cache_dir=tmp_path, **env)
    assert use_demo_models(settings, pick_device(), local_entry=local_entry) is demo
    chosen = select_model_set(settings, pick_device(), local_entry=local_entry)
    assert chosen.demo is demo
    assert not (tmp_path / "demo").exists()  # selecting builds nothing: loading does


def test_env_names_are_the_contract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    defaults = WorkerSettings()
    assert defaults.is_bundle and defaults.vram_offload_threshold_gb == 18.0
    assert not defaults.eager_load_all and defaults.visgate_webhook is None
    monkeypatch.setenv("HF_MODEL_ID", "stabilityai/sdxl-turbo")
    monkeypatch.setenv("EAGER_LOAD_ALL", "true")
    monkeypatch.setenv("VRAM_OFFLOAD_THRESHOLD_GB", "12.5")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("VISGATE_CALLBACK_TOKEN", "tok-secret")
    settings = WorkerSettings()
    assert settings.hf_model_id == "stabilityai/sdxl-turbo" and not settings.is_bundle
    assert settings.eager_load_all and settings.vram_offload_threshold_gb == 12.5
    assert settings.model_cache_dir == tmp_path
    assert "tok-secret" not in repr(settings)

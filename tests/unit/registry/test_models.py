"""The model spec registry: lookups, the 3D bundle's numbers, the public view."""

from __future__ import annotations

import json

import pytest

from visgate.registry.gpus import select_pools
from visgate.registry.models import (
    DEFAULT_READY_SECONDS,
    all_specs,
    estimated_ready_seconds,
    get_spec,
    public_models,
    worker_env,
)

BUNDLE = "lumen/3d-pipeline"


def test_required_entries_exist() -> None:
    ids = {s.model_id for s in all_specs()}
    assert {
        "black-forest-labs/FLUX.1-schnell",
        "black-forest-labs/FLUX.1-dev",
        "stabilityai/sdxl-turbo",
        BUNDLE,
    } <= ids
    flux_dev = get_spec("black-forest-labs/FLUX.1-dev")
    assert flux_dev is not None and flux_dev.gated


def test_lookup_is_case_insensitive_and_unknown_is_none() -> None:
    assert get_spec("BLACK-FOREST-LABS/flux.1-SCHNELL") is get_spec(
        "black-forest-labs/FLUX.1-schnell"
    )
    assert get_spec("acme/unknown") is None


def test_the_bundle_adds_up_and_asks_for_a_24_gb_card() -> None:
    spec = get_spec(BUNDLE)
    assert spec is not None and spec.is_bundle
    stages = {s.name: s.vram_gb for s in spec.stages}
    assert stages == {"primary": 11.2, "fallback-shape": 6.0, "fallback-segmentation": 4.5}
    assert sum(stages.values()) == pytest.approx(spec.vram_gb) == pytest.approx(21.7)
    assert select_pools(spec.vram_gb)[:2] == ["AMPERE_24", "ADA_24"]
    env = worker_env(BUNDLE)
    assert env == {"EAGER_LOAD_ALL": "true", "VRAM_OFFLOAD_THRESHOLD_GB": "18"}
    # Offloading starts before a 24 GB card is full, and after the primary path fits.
    assert stages["primary"] < float(env["VRAM_OFFLOAD_THRESHOLD_GB"]) < 24
    assert spec.component_ids == (
        "stabilityai/sdxl-turbo",
        "wgsxm/PartCrafter",
        "tencent/Hunyuan3D-2",
        "IDEA-Research/grounding-dino-tiny",
        "facebook/sam2.1-hiera-large",
    )
    hunyuan = next(c for c in spec.components if c.model_id == "tencent/Hunyuan3D-2")
    assert hunyuan.subfolder == "hunyuan3d-dit-v2-0-turbo"


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.model_id)
def test_every_entry_is_sane_and_cites_a_source(spec) -> None:
    assert spec.vram_gb > 0 and spec.tasks and spec.source
    assert spec.weights_gb is None or spec.weights_gb < spec.vram_gb
    select_pools(spec.vram_gb)  # some GPU fits every registry model


def test_plain_models_get_no_worker_env_and_a_default_ready_time() -> None:
    assert worker_env("acme/unknown") == {}
    assert worker_env("stabilityai/sdxl-turbo") == {}
    assert estimated_ready_seconds("acme/unknown") == DEFAULT_READY_SECONDS
    assert estimated_ready_seconds(BUNDLE) > estimated_ready_seconds("stabilityai/sdxl-turbo")


def test_public_models_is_json_with_tiers_and_sources() -> None:
    items = json.loads(json.dumps(public_models()))
    by_id = {i["model_id"]: i for i in items}
    assert by_id[BUNDLE]["gpu_tier"] == "24gb" and by_id[BUNDLE]["kind"] == "bundle"
    assert by_id["black-forest-labs/FLUX.1-dev"]["gpu_tier"] == "48gb"
    assert by_id["stabilityai/sdxl-turbo"]["gpu_tier"] == "16gb"
    assert all(i["source"] for i in items)
    components = [c["model_id"] for s in by_id[BUNDLE]["stages"] for c in s["components"]]
    assert len(components) == 5 and "wgsxm/PartCrafter" in components

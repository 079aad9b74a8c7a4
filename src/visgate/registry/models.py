"""Lookups over the model spec registry, and its public view for `GET /v1/models`."""

from __future__ import annotations

from typing import Any

from visgate.registry.gpus import smallest_size_tier
from visgate.registry.model_data import MODEL_SPECS
from visgate.registry.specs import ModelSpec

# Cold start for a model the registry does not know: image pull plus a few GB of weights.
DEFAULT_READY_SECONDS = 300

_BY_ID: dict[str, ModelSpec] = {spec.model_id.lower(): spec for spec in MODEL_SPECS}


def get_spec(model_id: str) -> ModelSpec | None:
    """The registry entry for a hub id or bundle name (hub ids are case-insensitive)."""
    return _BY_ID.get(model_id.lower())


def all_specs() -> tuple[ModelSpec, ...]:
    return MODEL_SPECS


def worker_env(model_id: str) -> dict[str, str]:
    """Pipeline settings the worker template gets for this model (empty when none)."""
    spec = get_spec(model_id)
    return dict(spec.worker_env) if spec else {}


def estimated_ready_seconds(model_id: str) -> int:
    spec = get_spec(model_id)
    return spec.ready_seconds if spec else DEFAULT_READY_SECONDS


def public_model(spec: ModelSpec) -> dict[str, Any]:
    return {
        "model_id": spec.model_id,
        "kind": spec.kind,
        "vram_gb": spec.vram_gb,
        "weights_gb": spec.weights_gb,
        "gpu_tier": smallest_size_tier(spec.vram_gb),
        "tasks": list(spec.tasks),
        "gated": spec.gated,
        "stages": [
            {
                "name": stage.name,
                "vram_gb": stage.vram_gb,
                "components": [
                    {"model_id": c.model_id, "role": c.role, "subfolder": c.subfolder}
                    for c in stage.components
                ],
            }
            for stage in spec.stages
        ],
        "worker_env": dict(spec.worker_env),
        "estimated_ready_seconds": spec.ready_seconds,
        "source": spec.source,
        "notes": spec.notes,
    }


def public_models() -> list[dict[str, Any]]:
    """`GET /v1/models`: every registry entry, with the smallest GPU tier that fits it."""
    return [public_model(spec) for spec in MODEL_SPECS]

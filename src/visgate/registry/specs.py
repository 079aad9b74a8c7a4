"""The shape of a model spec registry entry (the entries live in `model_data.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One hub repo a bundle loads; `subfolder` names the variant inside it, if any."""

    model_id: str
    role: str
    subfolder: str | None = None


@dataclass(frozen=True, slots=True)
class StageSpec:
    """Models the worker loads and offloads together, with their measured VRAM."""

    name: str
    vram_gb: float
    components: tuple[ComponentSpec, ...]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Measured facts that override the hub estimate: VRAM to provision, tasks, worker env.

    A spec with `stages` is a bundle: a deployable name, not a hub repo; each component
    is still checked on the hub. `vram_gb` is what to provision (all stages loaded when
    the bundle's `EAGER_LOAD_ALL` is on).
    """

    model_id: str
    vram_gb: float
    tasks: tuple[str, ...]
    source: str
    weights_gb: float | None = None
    gated: bool = False
    kind: str = "diffusion"
    stages: tuple[StageSpec, ...] = ()
    worker_env: Mapping[str, str] = field(default_factory=dict)
    ready_seconds: int = 300
    notes: str = ""

    @property
    def is_bundle(self) -> bool:
        return bool(self.stages)

    @property
    def components(self) -> tuple[ComponentSpec, ...]:
        return tuple(c for stage in self.stages for c in stage.components)

    @property
    def component_ids(self) -> tuple[str, ...]:
        """Distinct hub repos, in load order."""
        return tuple(dict.fromkeys(c.model_id for c in self.components))

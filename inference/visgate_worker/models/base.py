"""The one model interface every adapter implements, and the role protocols the pipeline calls.

`ManagedModel` owns the load/unload life cycle (so start-up, lazy fallback loading and VRAM
offload treat SDXL Turbo, PartCrafter, Hunyuan3D and Grounded SAM 2 alike); subclasses only say
how to build their upstream object from local files and how to call it.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import structlog
import trimesh
from PIL import Image

from visgate_worker.concepts import PartSlot
from visgate_worker.errors import ModelLoadError, WorkerError
from visgate_worker.models.sources import Source
from visgate_worker.vram import Device, release_memory

log = structlog.get_logger(__name__)


class ManagedModel(ABC):
    """A model that can be fetched, loaded, used and released again."""

    role: str = "model"

    def __init__(self, name: str, sources: Sequence[Source], device: Device) -> None:
        self.name = name
        self.sources = list(sources)
        self.device = device
        self._loaded = False
        self._paths: list[Path] | None = None  # kept across unload: the files stay on disk

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, loaded={self._loaded})"

    @property
    def loaded(self) -> bool:
        return self._loaded

    def is_cached(self) -> bool:
        return all(source.is_cached() for source in self.sources)

    def fetch(self) -> list[Path]:
        if self._paths is None:
            self._paths = [source.fetch() for source in self.sources]
        return self._paths

    def load(self) -> None:
        """Fetch (if needed) and build the upstream object; a no-op when already loaded."""
        if self._loaded:
            return
        paths = self.fetch()
        try:
            self._build(paths)
        except Exception as exc:
            self._discard_partial(exc)
            if isinstance(exc, WorkerError):
                raise
            raise ModelLoadError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        self._loaded = True
        log.info("model_loaded", model=self.name, role=self.role, device=self.device.name)

    def _discard_partial(self, exc: BaseException) -> None:
        """A build that failed half-way may hold gigabytes (a detector loaded, its SAM not):
        drop what it kept, and the locals of its frames that the traceback would keep alive,
        so a later retry or the other models get that memory back."""
        try:
            self._drop()
        except Exception as drop_exc:  # the build's error is the one worth reporting
            log.warning("model_drop_failed", model=self.name, error=str(drop_exc))
        traceback.clear_frames(exc.__traceback__)
        release_memory()

    def unload(self) -> None:
        if not self._loaded:
            return
        self._drop()
        self._loaded = False
        release_memory()
        log.info("model_unloaded", model=self.name, role=self.role)

    def _require_loaded(self) -> None:
        if not self._loaded:
            self.load()

    @abstractmethod
    def _build(self, paths: list[Path]) -> None:
        """Create the upstream object(s) from the fetched folders (one per source)."""

    @abstractmethod
    def _drop(self) -> None:
        """Forget the upstream object(s) so their memory can be freed."""


class TextToImage(Protocol):
    name: str

    def generate(
        self, prompt: str, *, steps: int, width: int, height: int, seed: int
    ) -> Image.Image: ...


class PartGenerator(Protocol):
    name: str

    def generate_parts(
        self, image: Image.Image, slots: Sequence[PartSlot], *, steps: int, tokens: int, seed: int
    ) -> list[trimesh.Trimesh]:
        """Meshes for the asked parts, in no particular order (labelling matches them)."""
        ...


class MeshGenerator(Protocol):
    name: str

    def generate_mesh(self, image: Image.Image, *, steps: int, seed: int) -> trimesh.Trimesh: ...


class Segmenter(Protocol):
    name: str

    def segment(self, image: Image.Image, phrases: Sequence[str]) -> list[np.ndarray | None]:
        """One boolean (H, W) mask per phrase, or None where the phrase was not found."""
        ...

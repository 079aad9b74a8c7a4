"""Tiny CPU stand-ins for the generators that cannot run without their upstream packages and
gigabytes of weights (PartCrafter, Hunyuan3D-2): same interface, primitive shapes, seeded by
the input image, so a demo or test job goes through every step of the real pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from visgate_worker.concepts import PartSlot
from visgate_worker.models.base import ManagedModel
from visgate_worker.vram import Device


def _image_seed(image: Image.Image, seed: int) -> int:
    digest = hashlib.sha256(image.convert("RGB").tobytes()).digest()
    return int.from_bytes(digest[:4], "little") ^ seed


def _ellipsoid(
    center: Sequence[float], half: Sequence[float], subdivisions: int
) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    mesh.apply_scale(np.asarray(half, dtype=np.float64))
    mesh.apply_translation(np.asarray(center, dtype=np.float64))
    return mesh


class StandInPartGenerator(ManagedModel):
    """Draws each asked part as an ellipsoid near its template anchor, returned shuffled (the
    real generator gives no order either)."""

    role = "part_generator"

    def __init__(self, device: Device, name: str = "demo/part-generator") -> None:
        super().__init__(name, [], device)

    def _build(self, paths: list[Path]) -> None:
        return None

    def _drop(self) -> None:
        return None

    def generate_parts(
        self, image: Image.Image, slots: Sequence[PartSlot], *, steps: int, tokens: int, seed: int
    ) -> list[trimesh.Trimesh]:
        self._require_loaded()
        rng = np.random.default_rng(_image_seed(image, seed))
        meshes = []
        for slot in slots:
            center = np.asarray(slot.anchor) + rng.normal(0, 0.02, 3)
            half = np.asarray(slot.extent) * rng.uniform(0.9, 1.1, 3)
            meshes.append(_ellipsoid(center, half, subdivisions=2))
        order = rng.permutation(len(meshes))
        return [meshes[i] for i in order]


class StandInMeshGenerator(ManagedModel):
    """One closed-ish blob (body, head, four legs, tail) as a single mesh, like Hunyuan3D's."""

    role = "mesh_generator"

    def __init__(self, device: Device, name: str = "demo/mesh-generator") -> None:
        super().__init__(name, [], device)

    def _build(self, paths: list[Path]) -> None:
        return None

    def _drop(self) -> None:
        return None

    def generate_mesh(self, image: Image.Image, *, steps: int, seed: int) -> trimesh.Trimesh:
        self._require_loaded()
        rng = np.random.default_rng(_image_seed(image, seed))
        pieces = [
            _ellipsoid((0.0, 0.1, 0.0), (0.55, 0.25, 0.25), 3),
            _ellipsoid((0.72, 0.42, 0.0), (0.22, 0.2, 0.18), 2),
            _ellipsoid((-0.8, 0.3, 0.0), (0.22, 0.06, 0.06), 2),
        ]
        for x in (0.4, -0.4):
            for z in (-0.15, 0.15):
                pieces.append(_ellipsoid((x, -0.5, z), (0.08, 0.35, 0.08), 2))
        mesh = trimesh.util.concatenate(pieces)
        mesh.apply_translation(rng.normal(0, 0.01, 3))
        return mesh

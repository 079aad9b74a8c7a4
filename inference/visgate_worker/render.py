"""A small software renderer for the fallback path: grey shaded views of a mesh plus, per pixel,
which face is visible there, so 2D masks can vote for 3D faces. Surface samples are z-buffered
(no GL needed in the image, and dense or coarse meshes both come out gap-free enough)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

DEFAULT_YAWS = (0.0, 90.0, 180.0, 270.0)


@dataclass(frozen=True)
class View:
    image: Image.Image
    face_ids: np.ndarray  # (H, W) int64, -1 where the background shows


def _yaw(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def render_views(
    mesh: trimesh.Trimesh, size: int, *, yaws: tuple[float, ...] = DEFAULT_YAWS, seed: int = 0
) -> list[View]:
    """Orthographic views around the vertical axis; the mesh must already fit [-1, 1]³."""
    count = max(4 * size * size, 20_000)
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    normals = mesh.face_normals[face_index]
    views = []
    for yaw in yaws:
        rot = _yaw(yaw)
        p = points @ rot.T
        n = normals @ rot.T
        col = np.clip(((p[:, 0] * 0.9 + 1) / 2 * (size - 1)).round().astype(np.int64), 0, size - 1)
        row = np.clip(
            ((1 - (p[:, 1] * 0.9 + 1) / 2) * (size - 1)).round().astype(np.int64), 0, size - 1
        )
        pixel = row * size + col
        nearest_first = np.lexsort((-p[:, 2], pixel))
        first = np.ones(len(nearest_first), dtype=bool)
        first[1:] = pixel[nearest_first][1:] != pixel[nearest_first][:-1]
        keep = nearest_first[first]
        face_ids = np.full(size * size, -1, dtype=np.int64)
        face_ids[pixel[keep]] = face_index[keep]
        shade = np.full(size * size, 255.0)
        shade[pixel[keep]] = 60 + 170 * np.abs(n[keep, 2])
        grey = shade.reshape(size, size).astype(np.uint8)
        image = Image.fromarray(np.stack([grey] * 3, axis=-1))
        views.append(View(image=image, face_ids=face_ids.reshape(size, size)))
    return views

"""Mesh bookkeeping shared by both paths: fit to the canonical box, match parts to template
anchors, sample and encode points, export GLB."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import trimesh

POINTS_ENCODING = "float32-le-xyz-base64"


def fit_transform(meshes: Sequence[trimesh.Trimesh]) -> tuple[np.ndarray, float]:
    """Center and scale that fit all meshes together into [-1, 1]³ (the anchors' frame)."""
    vertices = np.concatenate([m.vertices for m in meshes if len(m.vertices)], axis=0)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    center = (low + high) / 2
    half = float(np.max(high - low)) / 2
    return center, (1.0 / half if half > 0 else 1.0)


def assign_to_anchors(centroids: np.ndarray, anchors: np.ndarray) -> list[int | None]:
    """Each centroid gets the index of a distinct anchor, closest pairs first (greedy: at most
    16 parts, so the optimal assignment is not worth a solver)."""
    n, m = len(centroids), len(anchors)
    out: list[int | None] = [None] * n
    if n == 0 or m == 0:
        return out
    dist = np.linalg.norm(centroids[:, None, :] - anchors[None, :, :], axis=-1)
    used: set[int] = set()
    for flat in np.argsort(dist, axis=None):
        i, j = divmod(int(flat), m)
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
            if len(used) == min(n, m):
                break
    return out


def sample_points(mesh: trimesh.Trimesh | None, count: int, seed: int) -> np.ndarray:
    """Surface samples (float32, shape (count, 3)); empty for an empty part."""
    if mesh is None or len(mesh.faces) == 0 or mesh.area <= 0:
        return np.zeros((0, 3), dtype=np.float32)
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points, dtype=np.float32)


def encode_points(points: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(points, dtype="<f4").tobytes()).decode("ascii")


def decode_points(data: str) -> np.ndarray:
    """The inverse of `encode_points`, for clients and tests."""
    return np.frombuffer(base64.b64decode(data), dtype="<f4").reshape(-1, 3)


def export_glb(parts: Sequence[tuple[str, trimesh.Trimesh | None]]) -> bytes:
    """One scene, one named node per non-empty part."""
    scene = trimesh.Scene()
    for name, mesh in parts:
        if mesh is not None and len(mesh.faces):
            scene.add_geometry(mesh, node_name=name, geom_name=name)
    buffer = io.BytesIO()
    scene.export(buffer, file_type="glb")
    return buffer.getvalue()

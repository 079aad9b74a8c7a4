"""Fallback path: 2D part masks on rendered views vote for the 3D faces they cover; faces no mask
reached take the label of the nearest voted face (or, with no votes at all, of the nearest
template anchor), and the mesh is split into one submesh per part."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import trimesh

from visgate_worker.render import View

_MAX_REFERENCE = 8192


def nearest_index(query: np.ndarray, reference: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Index into `reference` of each query point's nearest neighbour (chunked cdist)."""
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
    out = np.empty(len(query), dtype=np.int64)
    for start in range(0, len(query), chunk):
        block = torch.from_numpy(np.ascontiguousarray(query[start : start + chunk], np.float32))
        out[start : start + chunk] = torch.cdist(block, ref).argmin(dim=1).numpy()
    return out


def label_faces(
    mesh: trimesh.Trimesh,
    views: Sequence[View],
    masks_per_view: Sequence[Sequence[np.ndarray | None]],
    anchors: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Per-face part index, and how many faces got their label from a mask."""
    num_faces, num_parts = len(mesh.faces), len(anchors)
    votes = np.zeros((num_faces, num_parts), dtype=np.float64)
    for view, masks in zip(views, masks_per_view, strict=True):
        visible = view.face_ids >= 0
        for part, mask in enumerate(masks):
            if mask is None:
                continue
            ids = view.face_ids[mask & visible]
            if ids.size:
                votes[:, part] += np.bincount(ids, minlength=num_faces)
    voted = votes.sum(axis=1) > 0
    labels = np.where(voted, votes.argmax(axis=1), -1)
    centroids = mesh.triangles_center
    if voted.all():
        return labels, int(voted.sum())
    if voted.any():
        donors = np.flatnonzero(voted)
        if len(donors) > _MAX_REFERENCE:
            donors = np.random.default_rng(seed).choice(donors, _MAX_REFERENCE, replace=False)
        nearest = nearest_index(centroids[~voted], centroids[donors])
        labels[~voted] = labels[donors[nearest]]
    else:
        labels = nearest_index(centroids, anchors)
    return labels, int(voted.sum())


def split_by_labels(
    mesh: trimesh.Trimesh, labels: np.ndarray, num_parts: int
) -> list[trimesh.Trimesh | None]:
    parts: list[trimesh.Trimesh | None] = []
    for part in range(num_parts):
        faces = np.flatnonzero(labels == part)
        parts.append(mesh.submesh([faces], append=True) if faces.size else None)
    return parts

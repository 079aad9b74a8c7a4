"""Naming parts by position, masks voting for faces on rendered views, point encoding."""

from __future__ import annotations

import numpy as np
import trimesh

from visgate_worker.concepts import TEMPLATES
from visgate_worker.geometry import decode_points, encode_points
from visgate_worker.labelling import label_faces, split_by_labels
from visgate_worker.pipeline import name_parts
from visgate_worker.render import render_views


def two_spheres() -> trimesh.Trimesh:
    left = trimesh.creation.icosphere(subdivisions=2, radius=0.4)
    left.apply_translation((-0.5, 0, 0))
    right = trimesh.creation.icosphere(subdivisions=2, radius=0.4)
    right.apply_translation((0.5, 0, 0))
    return trimesh.util.concatenate([left, right])


def test_masks_on_a_rendered_view_label_the_faces_they_cover() -> None:
    mesh = two_spheres()
    (view,) = render_views(mesh, 64, yaws=(0.0,))
    assert (view.face_ids >= 0).mean() > 0.2 and view.image.size == (64, 64)
    left_half = np.zeros((64, 64), dtype=bool)
    left_half[:, :32] = True
    anchors = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0]])  # deliberately unhelpful
    labels, from_masks = label_faces(mesh, [view], [[left_half, None]], anchors)
    assert from_masks > 0
    first_sphere = np.arange(len(mesh.faces)) < len(mesh.faces) // 2
    assert (labels[first_sphere] == 0).mean() > 0.95  # seen through the mask, or next to it
    parts = split_by_labels(mesh, labels, 2)
    assert parts[0] is not None and parts[1] is None


def test_without_any_mask_faces_go_to_the_nearest_anchor() -> None:
    mesh = two_spheres()
    views = render_views(mesh, 32, yaws=(0.0, 90.0))
    anchors = np.array([[0.6, 0.0, 0.0], [-0.6, 0.0, 0.0]])
    labels, from_masks = label_faces(mesh, views, [[None, None], [None, None]], anchors)
    assert from_masks == 0
    centroids_x = mesh.triangles_center[:, 0]
    assert np.all(labels[centroids_x > 0] == 0) and np.all(labels[centroids_x < 0] == 1)


def test_unordered_part_meshes_get_names_by_position() -> None:
    slots = list(TEMPLATES["plant"].parts)  # pot, stem, leaves, flower (bottom to top)
    meshes = []
    for y in (2.0, -3.0, 0.5, -1.0):  # flower, pot, leaves, stem, in a larger frame
        box = trimesh.creation.box(extents=(1.0, 0.6, 1.0))
        box.apply_translation((10.0, y, 0.0))
        meshes.append(box)
    named = name_parts(meshes, slots)
    heights = {slot.name: float(mesh.bounds.mean(axis=0)[1]) for slot, mesh in named}
    assert heights["pot"] < heights["stem"] < heights["leaves"] < heights["flower"]
    assert max(abs(v) for v in heights.values()) <= 1.0


def test_points_round_trip_as_little_endian_float32() -> None:
    points = np.array([[0.5, -1.0, 0.25], [1.0, 2.0, 3.0]], dtype=np.float32)
    encoded = encode_points(points)
    assert np.array_equal(decode_points(encoded), points)
    assert np.frombuffer(__import__("base64").b64decode(encoded), dtype="<f4")[1] == -1.0

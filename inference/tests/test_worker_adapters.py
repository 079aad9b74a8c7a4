"""Adapters of upstream pipelines that cannot be installed here (PartCrafter, Hunyuan3D-2):
their input/output handling, tested against test doubles of the upstream pipeline objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from visgate_worker.concepts import TEMPLATES
from visgate_worker.errors import MissingPackageError, PartGenerationError
from visgate_worker.models.hunyuan import Hunyuan3DMesh
from visgate_worker.models.partcrafter import PartCrafterParts
from visgate_worker.models.sources import LocalFolder
from visgate_worker.vram import pick_device

SLOTS = list(TEMPLATES["quadruped"].parts)


class PartCrafterPipelineDouble:
    """Stands in for `PartCrafterPipeline`: records the call, returns `.meshes`."""

    device = "cpu"

    def __init__(self, decoded: list[bool]) -> None:
        self.decoded = decoded
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        meshes = [trimesh.creation.box() if ok else None for ok in self.decoded]
        return type("PartCrafterPipelineOutput", (), {"meshes": meshes})()


def partcrafter_with(double: Any, tmp_path: Path) -> PartCrafterParts:
    return PartCrafterParts(
        "wgsxm/PartCrafter",
        LocalFolder(tmp_path, "weights"),
        pick_device(),
        factory=lambda path, device: double,
    )


def test_partcrafter_adapter_with_pipeline_double_asks_for_n_parts_and_drops_failed_decodes(
    tmp_path: Path,
) -> None:
    double = PartCrafterPipelineDouble([True, True, False, True, True, False])
    adapter = partcrafter_with(double, tmp_path)
    image = Image.new("RGBA", (32, 32), (255, 255, 255, 255))
    meshes = adapter.generate_parts(image, SLOTS, steps=7, tokens=256, seed=5)
    assert len(meshes) == 4
    call = double.calls[0]
    assert len(call["image"]) == 6 and all(i.mode == "RGB" for i in call["image"])
    assert call["attention_kwargs"] == {"num_parts": 6}
    assert (call["num_inference_steps"], call["num_tokens"]) == (7, 256)
    assert call["generator"].initial_seed() == 5


def test_partcrafter_adapter_with_pipeline_double_raises_when_no_part_decodes(
    tmp_path: Path,
) -> None:
    adapter = partcrafter_with(PartCrafterPipelineDouble([False, False]), tmp_path)
    with pytest.raises(PartGenerationError, match="none of the 2 parts"):
        adapter.generate_parts(Image.new("RGB", (8, 8)), SLOTS[:2], steps=1, tokens=8, seed=0)


class HunyuanPipelineDouble:
    """Stands in for `Hunyuan3DDiTFlowMatchingPipeline`: returns `[trimesh]`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> list[trimesh.Trimesh]:
        self.calls.append(kwargs)
        return [trimesh.creation.icosphere(subdivisions=1)]


def test_hunyuan_adapter_with_pipeline_double_sends_rgba_with_transparent_background(
    tmp_path: Path,
) -> None:
    double = HunyuanPipelineDouble()
    adapter = Hunyuan3DMesh(
        "tencent/Hunyuan3D-2:turbo",
        LocalFolder(tmp_path, "weights"),
        pick_device(),
        models_root=tmp_path,
        factory=lambda root, device: double,
    )
    image = Image.new("RGB", (16, 16), (255, 255, 255))
    image.paste((200, 30, 30), (4, 4, 12, 12))
    mesh = adapter.generate_mesh(image, steps=5, seed=9)
    assert len(mesh.faces) == 80
    call = double.calls[0]
    alpha = np.asarray(call["image"])[..., 3]
    assert call["image"].mode == "RGBA" and alpha[0, 0] == 0 and alpha[8, 8] == 255
    assert call["num_inference_steps"] == 5 and call["output_type"] == "trimesh"


def test_missing_upstream_packages_name_the_real_module_and_how_the_image_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path))
    partcrafter = PartCrafterParts("p", LocalFolder(tmp_path, "w"), pick_device())
    with pytest.raises(MissingPackageError) as raised:
        partcrafter.load()
    assert "src.pipelines.pipeline_partcrafter" in str(raised.value)
    assert "clones github.com/wgsxm/PartCrafter" in str(raised.value)
    hunyuan = Hunyuan3DMesh("h", LocalFolder(tmp_path, "w"), pick_device(), models_root=tmp_path)
    with pytest.raises(MissingPackageError) as raised:
        hunyuan.load()
    assert "`hy3dgen.shapegen`" in str(raised.value) and "pip package `hy3dgen`" in str(
        raised.value
    )
    assert not partcrafter.loaded and not hunyuan.loaded

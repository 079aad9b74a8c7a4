"""The VRAM estimate: dtype arithmetic, headroom per kind, and which weight files count."""

from __future__ import annotations

import json

import pytest

from tests.fakes.hub import FakeHub
from visgate.hub import HubValidator
from visgate.hub.estimate import (
    DTYPE_BYTES,
    ModelKind,
    classify,
    vram_gb,
    weights_bytes_from_parameters,
)
from visgate.hub.weights import RepoFile, weight_files, weights_bytes_from_files
from visgate.registry.gpus import smallest_size_tier
from visgate.registry.models import all_specs

G = 1_000_000_000


@pytest.mark.parametrize(
    ("parameters", "expected_bytes"),
    [
        ({"F32": 1_000}, 4_000),
        ({"BF16": 1_000}, 2_000),
        ({"F16": 1_000}, 2_000),
        ({"F64": 1_000}, 8_000),
        ({"F8_E4M3": 1_000}, 1_000),
        ({"F8_E5M2": 1_000}, 1_000),
        ({"I8": 1_000, "U8": 1_000}, 2_000),
        ({"I32": 10, "I64": 10, "BOOL": 10}, 130),
        ({"U4": 1_000}, 500),
        # A typical mix: bf16 weights, fp32 norms, an int64 position buffer.
        ({"BF16": 7_000_000_000, "F32": 1_000_000, "I64": 4_096}, 14_004_032_768),
        ({"bf16": 100}, 200),  # dtype names are matched case-insensitively
        ({"F3000": 100}, 400),  # an unknown dtype counts as 4 bytes, never as 0
        ({}, 0),
    ],
)
def test_weight_bytes_from_parameters(parameters: dict[str, int], expected_bytes: int) -> None:
    assert weights_bytes_from_parameters(parameters) == expected_bytes


def test_every_safetensors_dtype_has_a_positive_size() -> None:
    for dtype in ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"):
        assert DTYPE_BYTES[dtype] > 0
    assert all(size > 0 for size in DTYPE_BYTES.values())


@pytest.mark.parametrize(
    ("weights", "kind", "expected"),
    [
        # weights * 1.2 + 1 GB CUDA context + workload (diffusion 2, LLM 2, other 0)
        (10 * G, ModelKind.other, 13.0),
        (10 * G, ModelKind.diffusion, 15.0),
        (10 * G, ModelKind.llm, 15.0),
        (16 * G, ModelKind.llm, 22.2),  # an 8B bf16 LLM: fits a 24 GB card
        (33_730_000_000, ModelKind.diffusion, 43.5),  # FLUX's component folders: a 48 GB card
        (1, ModelKind.other, 1.1),  # rounded up, never down
    ],
)
def test_vram_formula(weights: int, kind: ModelKind, expected: float) -> None:
    assert vram_gb(weights, kind) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("library", "tag", "tags", "files", "kind"),
    [
        ("diffusers", "text-to-image", [], [], ModelKind.diffusion),
        (None, None, ["diffusers"], [], ModelKind.diffusion),
        (None, "image-to-3d", [], [], ModelKind.diffusion),
        (None, None, [], ["model_index.json"], ModelKind.diffusion),
        ("transformers", "text-generation", [], [], ModelKind.llm),
        ("transformers", "image-text-to-text", [], [], ModelKind.llm),
        ("transformers", None, ["text-generation-inference"], [], ModelKind.llm),
        ("transformers", "zero-shot-object-detection", [], [], ModelKind.other),
        (None, None, [], [], ModelKind.other),
    ],
)
def test_classify(
    library: str | None, tag: str | None, tags: list[str], files: list[str], kind: ModelKind
) -> None:
    assert classify(library, tag, tags, files) is kind


def _names(files: list[tuple[str, int]]) -> list[str]:
    return sorted(f.name for f in weight_files(RepoFile(n, s) for n, s in files))


@pytest.mark.parametrize(
    ("files", "counted"),
    [
        pytest.param(
            [("model.safetensors", 10), ("pytorch_model.bin", 10)],
            ["model.safetensors"],
            id="safetensors beats a .bin copy",
        ),
        pytest.param(
            [("model.fp16.ckpt", 5), ("model.fp16.safetensors", 5), ("config.yaml", 1)],
            ["model.fp16.safetensors"],
            id="safetensors beats a .ckpt copy",
        ),
        pytest.param(
            [("pytorch_model.bin", 10), ("README.md", 1)],
            ["pytorch_model.bin"],
            id="pickle weights count when there is nothing else",
        ),
        pytest.param(
            [("unet/w.safetensors", 10), ("unet/w.fp16.safetensors", 5)],
            ["unet/w.fp16.safetensors"],
            id="the half-precision variant, not both",
        ),
        pytest.param(
            [
                ("model_index.json", 1),
                ("sd_xl.safetensors", 14),
                ("unet/w.safetensors", 10),
                ("vae/w.safetensors", 1),
            ],
            ["unet/w.safetensors", "vae/w.safetensors"],
            id="diffusers: root single-file copy skipped",
        ),
        pytest.param(
            [
                ("model-00001-of-00002.safetensors", 5),
                ("model-00002-of-00002.safetensors", 5),
                ("model.safetensors.index.json", 1),
            ],
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            id="every shard, not the index",
        ),
        pytest.param(
            [
                ("t/w.fp16-00001-of-00002.safetensors", 5),
                ("t/w.fp16-00002-of-00002.safetensors", 5),
                ("t/w-00001-of-00002.safetensors", 10),
                ("t/w-00002-of-00002.safetensors", 10),
            ],
            ["t/w.fp16-00001-of-00002.safetensors", "t/w.fp16-00002-of-00002.safetensors"],
            id="sharded fp16 variant",
        ),
        pytest.param(
            [("model.gguf", 10), ("model.onnx", 10), ("flax_model.msgpack", 10)],
            [],
            id="formats the worker cannot load",
        ),
    ],
)
def test_weight_file_selection(files: list[tuple[str, int]], counted: list[str]) -> None:
    assert _names(files) == counted


def test_files_of_unknown_size_give_no_estimate() -> None:
    assert weights_bytes_from_files([RepoFile("model.safetensors", None)]) is None


async def test_llm_is_sized_from_safetensors_parameters(validator: HubValidator) -> None:
    check = await validator.check("Qwen/Qwen2.5-0.5B-Instruct", None)
    assert check.source == "safetensors" and check.kind == "llm"
    # 494,032,768 bf16 params = 0.988 GB; * 1.2 + 1 + 2 GB KV cache = 4.19 -> 4.2
    assert check.vram_gb == pytest.approx(4.2)
    assert check.weights_gb == pytest.approx(0.99)


async def test_diffusers_repo_is_sized_from_its_component_folders(
    hub: FakeHub, validator: HubValidator
) -> None:
    # The hub's safetensors metadata describes only a 1B root checkpoint here; the
    # component folders hold 8 GB (fp16 variants) and are what a pipeline loads.
    hub.state.add_model(
        "acme/pipeline",
        library_name="diffusers",
        parameters={"BF16": 500_000_000},
        siblings=[
            ("model_index.json", 1),
            ("single_file.safetensors", 1_000_000_000),
            ("unet/diffusion_pytorch_model.safetensors", 12_000_000_000),
            ("unet/diffusion_pytorch_model.fp16.safetensors", 6_000_000_000),
            ("text_encoder/model.fp16.safetensors", 2_000_000_000),
        ],
    )
    check = await validator.check("acme/pipeline", None)
    assert (check.source, check.kind, check.weights_gb) == ("files", "diffusion", 8.0)
    assert check.vram_gb == pytest.approx(8 * 1.2 + 1 + 2)


async def test_without_safetensors_metadata_file_sizes_are_used(
    hub: FakeHub, validator: HubValidator
) -> None:
    hub.state.add_model(
        "acme/detector",
        library_name="transformers",
        siblings=[("pytorch_model.bin", 3_000_000_000), ("config.json", 100)],
    )
    check = await validator.check("acme/detector", None)
    assert (check.source, check.kind, check.vram_gb) == ("files", "other", 4.6)


@pytest.mark.parametrize(
    "spec", [s for s in all_specs() if not s.is_bundle], ids=lambda s: s.model_id
)
async def test_formula_and_registry_agree_on_the_gpu_class(
    spec, hub: FakeHub, validator: HubValidator
) -> None:
    """For each registry model, the hub-data estimate needs the same card size as the
    measured figure: the registry refines the formula, it does not contradict it."""
    hub.state.add_model("mirror/" + spec.model_id.split("/")[1], **_same_repo(hub, spec.model_id))
    estimated = await validator.check("mirror/" + spec.model_id.split("/")[1], None)
    assert estimated.source == "files"
    assert smallest_size_tier(estimated.vram_gb) == smallest_size_tier(spec.vram_gb)
    assert spec.weights_gb == pytest.approx(estimated.weights_gb, rel=0.05)


def _same_repo(hub: FakeHub, model_id: str) -> dict[str, object]:
    """The seeded repo's listing under another name (so the registry does not match)."""
    m = hub.state.models[model_id.lower()]
    return {
        "siblings": json.loads(json.dumps(m.siblings)),
        "library_name": m.library_name,
        "pipeline_tag": m.pipeline_tag,
        "parameters": m.parameters,
    }

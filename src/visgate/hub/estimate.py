"""VRAM to provision for a hub model the registry does not know.

    vram_gb = weights_gb * 1.2 + 1.0 + workload_gb       (GB = 1e9 bytes, rounded up to 0.1)

- weights_gb: Σ parameters * bytes per dtype from the hub's safetensors metadata, or the
  summed weight files of one variant (`weights.py`) when there is none.
- the 1.2 factor: inference overhead of the Hub's model-memory estimator (accelerate
  `estimate-memory`, https://huggingface.co/docs/accelerate/usage_guides/model_size_estimator:
  "expect to add up to an additional 20%", from EleutherAI's transformer-math).
- the 1.0 GB term: the CUDA context and allocator reserve a process holds before any tensor.
- workload_gb by kind: diffusion pipelines add 2.0 GB for activations and the VAE-decode
  spike of one 512-1024 px image; LLMs add 2.0 GB of KV cache (2*layers*kv_heads*head_dim*
  2 bytes*tokens: about 1 GB for an 8B GQA model at 8k tokens, about 0.7 GB for 70B at 2k);
  other models add nothing.
Figures that are measured instead belong in the registry, which overrides this.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)

GB = 1e9
INFERENCE_OVERHEAD = 1.2
CUDA_CONTEXT_GB = 1.0
DIFFUSION_ACTIVATIONS_GB = 2.0
LLM_KV_CACHE_GB = 2.0

# Bytes per element of each safetensors dtype (https://github.com/huggingface/safetensors,
# `Dtype`); sub-byte types are packed.
DTYPE_BYTES: dict[str, float] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "C64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E4M3FN": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F6_E2M3": 0.75,
    "F6_E3M2": 0.75,
    "F4": 0.5,
    "I4": 0.5,
    "U4": 0.5,
}
UNKNOWN_DTYPE_BYTES = 4.0  # assume the widest common type rather than under-provision


class ModelKind(StrEnum):
    diffusion = "diffusion"
    llm = "llm"
    other = "other"


DIFFUSION_TASKS = frozenset(
    {
        "text-to-image",
        "image-to-image",
        "unconditional-image-generation",
        "text-to-video",
        "image-to-video",
        "text-to-3d",
        "image-to-3d",
        "inpainting",
    }
)
LLM_TASKS = frozenset(
    {"text-generation", "text2text-generation", "image-text-to-text", "conversational"}
)

_WORKLOAD_GB = {
    ModelKind.diffusion: DIFFUSION_ACTIVATIONS_GB,
    ModelKind.llm: LLM_KV_CACHE_GB,
    ModelKind.other: 0.0,
}


def classify(
    library_name: str | None,
    pipeline_tag: str | None,
    tags: Iterable[str] = (),
    filenames: Iterable[str] = (),
) -> ModelKind:
    """Diffusion pipeline, LLM or other, from what the hub says about the repo."""
    tag_set = {t.lower() for t in tags}
    if (
        library_name == "diffusers"
        or "diffusers" in tag_set
        or pipeline_tag in DIFFUSION_TASKS
        or "model_index.json" in set(filenames)
    ):
        return ModelKind.diffusion
    if pipeline_tag in LLM_TASKS or "text-generation-inference" in tag_set:
        return ModelKind.llm
    return ModelKind.other


def weights_bytes_from_parameters(parameters: Mapping[str, int]) -> int:
    """Σ parameters * bytes per dtype, as the hub's `safetensors.parameters` lists them."""
    total = 0.0
    for dtype, count in parameters.items():
        size = DTYPE_BYTES.get(dtype.upper())
        if size is None:
            log.warning("unknown_safetensors_dtype", dtype=dtype, assumed_bytes=UNKNOWN_DTYPE_BYTES)
            size = UNKNOWN_DTYPE_BYTES
        total += count * size
    return math.ceil(total)


def vram_gb(weights_bytes: int, kind: ModelKind) -> float:
    """The formula above, rounded up to 0.1 GB."""
    raw = weights_bytes / GB * INFERENCE_OVERHEAD + CUDA_CONTEXT_GB + _WORKLOAD_GB[kind]
    return math.ceil(raw * 10 - 1e-9) / 10

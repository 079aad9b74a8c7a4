"""Which files of a repo a worker would load: one format and one variant per folder.

Repos carry the same weights several times: `.safetensors` beside `.bin`/`.ckpt`/`.pt`
copies, `*.fp16.safetensors` beside full-precision files, and in diffusers repos a
single-file checkpoint at the root beside the component folders (`unet/`, `vae/`, ...).
Summing everything would double or triple the estimate, so per folder we keep
safetensors when there are any (else the pickle formats), and the half-precision
variant when there is one (what diffusers loads with `variant="fp16"`); in a diffusers
repo (a root `model_index.json`) only the component folders count — the same rule the
diffusers pipeline-size calculator uses (https://huggingface.co/spaces/diffusers/compute-pipeline-size).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

SAFETENSORS = ".safetensors"
PICKLE_FORMATS = (".bin", ".pt", ".pth", ".ckpt")
HALF_VARIANTS = ("fp16", "bf16")

# `name.fp16.safetensors`, `name.fp16-00001-of-00002.safetensors` → variant "fp16".
_VARIANT = re.compile(r"\.(fp16|bf16|fp32|ema|non_ema)(?:-\d{5}-of-\d{5})?\.[a-z]+$")


@dataclass(frozen=True, slots=True)
class RepoFile:
    name: str
    size: int | None


def is_diffusers_repo(filenames: Iterable[str]) -> bool:
    return "model_index.json" in set(filenames)


def _folder(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _variant(name: str) -> str:
    match = _VARIANT.search(name)
    return match.group(1) if match else ""


def _pick_variant(files: list[RepoFile]) -> list[RepoFile]:
    variants = {_variant(f.name) for f in files}
    for preferred in HALF_VARIANTS:
        if preferred in variants:
            return [f for f in files if _variant(f.name) == preferred]
    chosen = "" if "" in variants else sorted(variants)[0]
    return [f for f in files if _variant(f.name) == chosen]


def weight_files(files: Iterable[RepoFile]) -> list[RepoFile]:
    """The weight files counted for the estimate (empty when the repo has none)."""
    files = list(files)
    diffusers = is_diffusers_repo(f.name for f in files)
    by_folder: dict[str, list[RepoFile]] = defaultdict(list)
    for f in files:
        lowered = f.name.lower()
        if not (lowered.endswith(SAFETENSORS) or lowered.endswith(PICKLE_FORMATS)):
            continue
        folder = _folder(f.name)
        if diffusers and folder == "":
            continue  # root single-file copy of the whole pipeline
        by_folder[folder].append(f)
    chosen: list[RepoFile] = []
    for folder in sorted(by_folder):
        group = by_folder[folder]
        safetensors = [f for f in group if f.name.lower().endswith(SAFETENSORS)]
        chosen += _pick_variant(safetensors or group)
    return chosen


def weights_bytes_from_files(files: Iterable[RepoFile]) -> int | None:
    """Summed size of `weight_files`, or None when there are none or a size is unknown."""
    chosen = weight_files(files)
    if not chosen or any(f.size is None for f in chosen):
        return None
    return sum(f.size or 0 for f in chosen)


def only_unservable_formats(filenames: Iterable[str]) -> str | None:
    """Name the format when a repo ships only weights the worker cannot load (e.g. GGUF)."""
    suffixes = {n.rsplit(".", 1)[-1].lower() for n in filenames if "." in n}
    for fmt in ("gguf", "onnx", "mlmodel", "tflite", "h5", "msgpack"):
        if fmt in suffixes:
            return fmt
    return None

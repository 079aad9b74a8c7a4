"""Where models run and how much GPU memory they hold: one small interface, so the offload rule
is tested with a meter double and runs on `torch.cuda.memory_allocated` in the image."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Protocol

import torch

GIB = float(1 << 30)


@dataclass(frozen=True)
class Device:
    """The torch device and dtype every model adapter uses."""

    name: str  # "cuda" or "cpu"
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.name.startswith("cuda")


def pick_device() -> Device:
    if torch.cuda.is_available():
        return Device("cuda", torch.float16)
    return Device("cpu", torch.float32)


class VramMeter(Protocol):
    def allocated_gb(self) -> float:
        """GPU memory held by tensors now, in GiB (0.0 without a GPU)."""
        ...

    def gpu_name(self) -> str: ...


class TorchVramMeter:
    """`torch.cuda.memory_allocated`: what our tensors hold, not the allocator's reserve."""

    def allocated_gb(self) -> float:
        if not torch.cuda.is_available():
            return 0.0
        return round(torch.cuda.memory_allocated() / GIB, 3)

    def gpu_name(self) -> str:
        if not torch.cuda.is_available():
            return "cpu"
        return str(torch.cuda.get_device_name(0))


def release_memory() -> None:
    """After dropping a model: collect it now and hand cached blocks back to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

"""Runpod serverless GPU pools and the `gpu_tier` names users may send: plain data.

Sources (checked 2026-11):
- Pool ids and members: the `GpuGroup` enum of Runpod's own SDK, runpod/flash
  `src/runpod_flash/core/resources/gpu.py` (ids are what `saveEndpoint(gpuIds:)` takes),
  and the serverless endpoint docs https://docs.runpod.io/serverless/endpoints/endpoint-configurations
  (a priority list of GPU categories; Runpod falls back down the list when one has no capacity).
- VRAM and prices: https://docs.runpod.io/serverless/pricing (flex cost per second).
  That table does not list the 32 GB (RTX 5090) and 96 GB (RTX PRO 6000) pools (checked
  again 2026-11: still absent), so their price is left unknown (None) rather than guessed,
  and they rank AFTER every priced pool: selection never spends a user's money at an
  unknown rate while a pool with a known one fits. They stay reachable by widening (when
  the priced pools have no capacity) and by naming them as a `gpu_tier`.
Pool members can drift; `GpuCatalogue.refresh` overlays the live `gpuTypes` answer
(sizes, and stock and price where the provider reports them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuPool:
    """One serverless GPU pool: what `gpuIds` names, how much memory each worker gets."""

    id: str
    vram_gb: float
    gpus: tuple[str, ...]  # display names
    gpu_type_ids: tuple[str, ...]  # Runpod `gpuTypes` ids of the members
    price_rank: int  # 1 = cheapest per second; unpriced pools rank after every priced one
    flex_usd_per_second: float | None  # None where Runpod's table does not list the pool
    aliases: tuple[str, ...] = ()  # GPU names that pin this pool as a `gpu_tier`
    # Live figures (None = not reported): the best stock level among the pool's GPU types
    # (`NONE`|`LOW`|`MEDIUM`|`HIGH`) and the serverless list price in USD per GPU-hour.
    availability: str | None = None
    price_per_hour: float | None = None


POOLS: tuple[GpuPool, ...] = (
    GpuPool(
        "AMPERE_16",
        16.0,
        ("RTX A4000", "RTX A4500", "RTX 4000 Ada", "RTX 2000 Ada"),
        (
            "NVIDIA RTX A4000",
            "NVIDIA RTX A4500",
            "NVIDIA RTX 4000 Ada Generation",
            "NVIDIA RTX 2000 Ada Generation",
        ),
        1,
        0.00016,
        ("a4000", "a4500", "rtx4000ada", "rtx2000ada"),
    ),
    GpuPool(
        "AMPERE_24",
        24.0,
        ("L4", "RTX A5000", "RTX 3090"),
        ("NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"),
        2,
        0.00019,
        ("l4", "a5000", "3090", "rtx3090"),
    ),
    GpuPool(
        "ADA_24",
        24.0,
        ("RTX 4090",),
        ("NVIDIA GeForce RTX 4090",),
        3,
        0.00031,
        ("4090", "rtx4090"),
    ),
    GpuPool(
        "AMPERE_48",
        48.0,
        ("RTX A6000", "A40"),
        ("NVIDIA RTX A6000", "NVIDIA A40"),
        4,
        0.00034,
        ("a6000", "a40"),
    ),
    GpuPool(
        "ADA_48_PRO",
        48.0,
        ("L40", "L40S", "RTX 6000 Ada"),
        ("NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"),
        5,
        0.00053,
        ("l40", "l40s", "6000ada", "rtx6000ada"),
    ),
    GpuPool(
        "AMPERE_80",
        80.0,
        ("A100 PCIe", "A100 SXM"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
        6,
        0.00076,
        ("a100",),
    ),
    GpuPool(
        "ADA_80_PRO",
        80.0,
        ("H100 PCIe", "H100 SXM", "H100 NVL"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL"),
        7,
        0.00116,
        ("h100",),
    ),
    GpuPool(
        "HOPPER_141",
        141.0,
        ("H200",),
        ("NVIDIA H200",),
        8,
        0.00155,
        ("h200",),
    ),
    GpuPool(
        "BLACKWELL_180",
        180.0,
        ("B200",),
        ("NVIDIA B200",),
        9,
        0.00240,
        ("b200",),
    ),
    GpuPool(
        "ADA_32_PRO",
        32.0,
        ("RTX 5090",),
        ("NVIDIA GeForce RTX 5090",),
        10,
        None,
        ("5090", "rtx5090"),
    ),
    GpuPool(
        "BLACKWELL_96",
        96.0,
        ("RTX PRO 6000",),
        (
            "NVIDIA RTX PRO 6000 Blackwell Server Edition",
            "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
            "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
        ),
        11,
        None,
        ("rtxpro6000", "pro6000"),
    ),
)

# Memory-size tiers: every pool of that size, so Runpod can fall back between them.
SIZE_TIERS: dict[str, tuple[str, ...]] = {
    "16gb": ("AMPERE_16",),
    "24gb": ("AMPERE_24", "ADA_24"),
    "32gb": ("ADA_32_PRO",),
    "48gb": ("AMPERE_48", "ADA_48_PRO"),
    "80gb": ("AMPERE_80", "ADA_80_PRO"),
    "96gb": ("BLACKWELL_96",),
    "141gb": ("HOPPER_141",),
    "180gb": ("BLACKWELL_180",),
}

# At most this many pools go into one endpoint's `gpuIds` (Runpod's priority list).
MAX_POOLS_PER_ENDPOINT = 3

"""Which pools an endpoint gets: every tier boundary, tiers, exclusions and widening."""

from __future__ import annotations

import pytest

from visgate.domain.errors import RunpodInsufficientGPUError, ValidationError
from visgate.registry.gpu_data import POOLS
from visgate.registry.gpus import (
    fitting_pools,
    resolve_tier,
    select_pools,
    tier_names,
    widen_pools,
)


@pytest.mark.parametrize(
    ("vram", "pools"),
    [
        (0.5, ["AMPERE_16", "AMPERE_24", "ADA_24"]),
        (16.0, ["AMPERE_16", "AMPERE_24", "ADA_24"]),  # equal to the pool's VRAM fits
        (16.01, ["AMPERE_24", "ADA_24", "AMPERE_48"]),
        (24.0, ["AMPERE_24", "ADA_24", "AMPERE_48"]),
        # The 5090 (32 GB) and RTX PRO 6000 (96 GB) pools have no published serverless
        # price: they come after every priced pool that fits.
        (24.01, ["AMPERE_48", "ADA_48_PRO", "AMPERE_80"]),
        (32.0, ["AMPERE_48", "ADA_48_PRO", "AMPERE_80"]),
        (32.01, ["AMPERE_48", "ADA_48_PRO", "AMPERE_80"]),
        (48.0, ["AMPERE_48", "ADA_48_PRO", "AMPERE_80"]),
        (48.01, ["AMPERE_80", "ADA_80_PRO", "HOPPER_141"]),
        (80.0, ["AMPERE_80", "ADA_80_PRO", "HOPPER_141"]),
        (80.01, ["HOPPER_141", "BLACKWELL_180", "BLACKWELL_96"]),
        (96.0, ["HOPPER_141", "BLACKWELL_180", "BLACKWELL_96"]),
        (96.01, ["HOPPER_141", "BLACKWELL_180"]),
        (141.0, ["HOPPER_141", "BLACKWELL_180"]),
        (141.01, ["BLACKWELL_180"]),
        (180.0, ["BLACKWELL_180"]),
    ],
)
def test_pools_fit_and_go_cheapest_first(vram: float, pools: list[str]) -> None:
    assert select_pools(vram) == pools


def test_bigger_than_any_gpu_is_refused() -> None:
    with pytest.raises(RunpodInsufficientGPUError, match="180 GB"):
        select_pools(180.01)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_nonsense_estimate_is_a_bug(bad: float) -> None:
    with pytest.raises(ValueError):
        select_pools(bad)


@pytest.mark.parametrize(
    ("tier", "canonical"),
    [
        ("24gb", "24gb"),
        ("24GB", "24gb"),
        ("24 GB", "24gb"),
        ("l4", "AMPERE_24"),
        ("L4", "AMPERE_24"),
        ("RTX 4090", "ADA_24"),
        ("rtx-5090", "ADA_32_PRO"),
        ("A100", "AMPERE_80"),
        ("h100", "ADA_80_PRO"),
        ("H200", "HOPPER_141"),
        ("b200", "BLACKWELL_180"),
        ("ampere_48", "AMPERE_48"),
        ("L40S", "ADA_48_PRO"),
    ],
)
def test_tier_aliases(tier: str, canonical: str) -> None:
    assert resolve_tier(tier) == canonical


def test_an_unknown_tier_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        resolve_tier("gtx1080")
    assert "24gb" in raised.value.message and "h100" in raised.value.message
    assert raised.value.fields and raised.value.fields[0]["field"] == "gpu_tier"


def test_every_listed_tier_name_resolves() -> None:
    for name in tier_names():
        resolve_tier(name)


@pytest.mark.parametrize(
    ("vram", "tier", "pools"),
    [
        (21.7, "24gb", ["AMPERE_24", "ADA_24"]),
        (24.0, "24gb", ["AMPERE_24", "ADA_24"]),
        (21.7, "l4", ["AMPERE_24"]),
        (21.7, "4090", ["ADA_24"]),
        (21.7, "80gb", ["AMPERE_80", "ADA_80_PRO"]),  # a bigger tier than needed is honoured
        (40.0, "h100", ["ADA_80_PRO"]),
        (10.0, "16gb", ["AMPERE_16"]),
    ],
)
def test_a_tier_pins_the_pools(vram: float, tier: str, pools: list[str]) -> None:
    assert select_pools(vram, tier) == pools


@pytest.mark.parametrize(
    ("vram", "tier", "smallest"),
    [
        (16.01, "16gb", "24gb"),
        (24.01, "24gb", "32gb"),
        (24.01, "l4", "32gb"),
        (32.01, "5090", "48gb"),
        (40.0, "24gb", "48gb"),
        (48.01, "48gb", "80gb"),
        (80.01, "a100", "96gb"),
        (96.01, "96gb", "141gb"),
        (141.01, "h200", "180gb"),
    ],
)
def test_a_tier_too_small_names_the_smallest_that_fits(
    vram: float, tier: str, smallest: str
) -> None:
    with pytest.raises(RunpodInsufficientGPUError) as raised:
        select_pools(vram, tier)
    assert f"'{smallest}'" in raised.value.message
    assert f"{vram:.1f} GB" in raised.value.message


def test_excluded_pools_yield_the_next_ones() -> None:
    assert select_pools(21.7, exclude=["AMPERE_24"]) == ["ADA_24", "AMPERE_48", "ADA_48_PRO"]
    assert select_pools(21.7, "24gb", exclude=["AMPERE_24"]) == ["ADA_24"]


def test_no_pool_left_is_insufficient_gpu() -> None:
    with pytest.raises(RunpodInsufficientGPUError, match="no capacity"):
        select_pools(21.7, "24gb", exclude=["AMPERE_24", "ADA_24"])


def test_widening_walks_every_fitting_pool_then_stops() -> None:
    seen: list[str] = []
    pools = select_pools(21.7)
    rounds = 0
    while pools is not None:
        assert 1 <= len(pools) <= 3 and len(set(pools)) == len(pools)
        seen += [p for p in pools if p not in seen]
        pools = widen_pools(pools, 21.7)
        rounds += 1
    assert seen == fitting_pools(21.7)  # each pool offered, cheapest first
    assert len(seen) == 10 and rounds == 4  # ten fitting pools, three new ones a round


def test_widening_keeps_current_pools_when_few_are_new() -> None:
    start = select_pools(70.0)
    assert start == ["AMPERE_80", "ADA_80_PRO", "HOPPER_141"]
    # Two untried pools left: the priciest current one stays as a third chance.
    assert widen_pools(start, 70.0) == ["HOPPER_141", "BLACKWELL_180", "BLACKWELL_96"]
    assert widen_pools(["HOPPER_141", "BLACKWELL_180", "BLACKWELL_96"], 70.0) is None


def test_widening_stays_inside_the_tier() -> None:
    assert widen_pools(["AMPERE_24"], 21.7, "24gb") == ["AMPERE_24", "ADA_24"]
    assert widen_pools(["AMPERE_24", "ADA_24"], 21.7, "24gb") is None
    assert widen_pools(["AMPERE_24"], 21.7, "l4") is None


def test_widening_from_nothing_starts_at_the_cheapest() -> None:
    assert widen_pools([], 10.0) == ["AMPERE_16", "AMPERE_24", "ADA_24"]


def test_a_60_gb_model_gets_the_priced_a100_before_the_unpriced_rtx_pro_6000() -> None:
    pools = fitting_pools(60.0)
    assert pools.index("AMPERE_80") < pools.index("BLACKWELL_96")
    assert select_pools(60.0) == ["AMPERE_80", "ADA_80_PRO", "HOPPER_141"]


def test_pools_without_a_known_price_rank_after_every_priced_pool() -> None:
    ranked = sorted(POOLS, key=lambda p: p.price_rank)
    priced = [p for p in ranked if p.flex_usd_per_second is not None]
    unpriced = [p for p in ranked if p.flex_usd_per_second is None]
    assert ranked == priced + unpriced
    assert [p.flex_usd_per_second for p in priced] == sorted(p.flex_usd_per_second for p in priced)

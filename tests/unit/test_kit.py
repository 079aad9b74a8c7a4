"""The shared helpers. Timestamps in responses and webhooks: one fixed RFC 3339 shape, so
clients that parse with one format, or sort the strings, see the instants' order; and the
CLI reads them back to the same instant."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from visgate.kit import epoch, iso


def test_a_whole_second_keeps_its_microseconds() -> None:
    assert iso(1_796_000_000.0) == "2026-11-30T00:53:20.000000Z"


@given(st.lists(st.integers(1_700_000_000_000_000, 1_900_000_000_000_000), min_size=2))
def test_the_strings_sort_as_the_instants_do(micros: list[int]) -> None:
    stamps = [m / 1_000_000 for m in micros]
    rendered = [iso(t) for t in stamps]
    assert sorted(rendered) == [iso(t) for t in sorted(stamps)]
    for text in rendered:
        assert text is not None
        assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


@given(st.integers(1_700_000_000_000_000, 1_900_000_000_000_000))
def test_a_wire_time_reads_back_to_its_instant(micros: int) -> None:
    assert epoch(iso(micros / 1_000_000)) == micros / 1_000_000


def test_what_is_not_a_time_reads_as_none() -> None:
    assert [epoch(text) for text in (None, "", "soon", "2026-13-01T00:00:00Z")] == [None] * 4

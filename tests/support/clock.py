"""A clock a test moves by hand, for code that takes `clock=` (a `() -> float` in seconds):
cache expiry and retention are checked by advancing it, not by sleeping past them."""

from __future__ import annotations


class ManualClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

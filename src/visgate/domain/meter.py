"""The running-cost meter a deployment keeps when no billed figure can be read.

Runpod bills worker time per second. The reconciler samples the endpoint's worker counts
(each health read while loading, then every `SAMPLE_SECONDS` while ready, and a last zero
at teardown); between two samples the count and unit price seen at the first one are taken
to hold, so the estimate is a step integral of workers x price over time.
"""

from __future__ import annotations

from pydantic import BaseModel

SAMPLE_SECONDS = 60.0


class Meter(BaseModel):
    at: float  # when the last sample was taken
    workers: int = 0  # workers billed at `at` (starting, idle or busy)
    unit_price_per_hour: float | None = None  # USD per worker-hour then; None if unpriced
    spend: float = 0.0  # USD estimated up to `at`

    def spend_at(self, now: float) -> float:
        """The estimate at `now`, assuming the last sample still holds."""
        hours = max(0.0, now - self.at) / 3600
        return self.spend + self.workers * (self.unit_price_per_hour or 0.0) * hours

    def sample(self, now: float, workers: int, unit_price_per_hour: float | None) -> None:
        if now < self.at:  # a late write of an older sample: keep the newer one
            return
        self.spend = self.spend_at(now)
        self.at, self.workers, self.unit_price_per_hour = now, workers, unit_price_per_hour

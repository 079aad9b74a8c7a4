"""Runpod data centres, and the `region` a deployment may ask for.

The list is Runpod's published data-centre ids (the `DataCenterId` enum of the Runpod API,
as the runpod-sdk crate 0.6.2 lists it, 2026; REST v2 serves the live list at
`GET /v2/catalog/datacenters`). A POST is checked against it synchronously, so an unknown
region is a 422 at once rather than a failed deployment minutes later.
"""

from __future__ import annotations

from visgate.domain.errors import ValidationError

DATA_CENTERS: tuple[str, ...] = (
    "AP-IN-1",
    "AP-JP-1",
    "CA-MTL-1",
    "CA-MTL-2",
    "CA-MTL-3",
    "EU-CZ-1",
    "EU-FR-1",
    "EU-NL-1",
    "EU-RO-1",
    "EU-SE-1",
    "EUR-IS-1",
    "EUR-IS-2",
    "EUR-IS-3",
    "EUR-NO-1",
    "OC-AU-1",
    "US-CA-2",
    "US-DE-1",
    "US-GA-1",
    "US-GA-2",
    "US-IL-1",
    "US-KS-2",
    "US-KS-3",
    "US-MD-1",
    "US-NC-1",
    "US-TX-1",
    "US-TX-3",
    "US-TX-4",
    "US-WA-1",
)

# The continent prefixes a user may give instead of one data centre.
PREFIXES: tuple[str, ...] = tuple(sorted({dc.split("-")[0][:2] for dc in DATA_CENTERS}))


def data_centers_for(region: str) -> list[str]:
    """The data centres `region` names: one id (`EU-RO-1`), a country (`EU-RO`, `US-TX`) or
    a continent prefix (`EU` also takes Iceland and Norway, listed as `EUR-*`).
    Case-insensitive. `ValidationError` naming the valid values when nothing matches."""
    wanted = region.strip().upper()
    found = [
        dc
        for dc in DATA_CENTERS
        if dc == wanted
        or dc.startswith(wanted + "-")
        or (wanted in PREFIXES and dc.split("-")[0].startswith(wanted))
    ]
    if not found:
        raise ValidationError(
            f"unknown region {region!r}: use a continent prefix ({', '.join(PREFIXES)})"
            f" or a Runpod data centre ({', '.join(DATA_CENTERS)})",
            [{"field": "region", "message": "unknown region"}],
        )
    return found

"""What the console's pages show, computed from records: the phase timeline, money and
durations as people read them, and what to do about each error. Pure functions, so the page
and its tests agree without a browser."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from visgate.cost.pricing import unit_price_per_hour
from visgate.domain.deployment import Deployment
from visgate.domain.status import SETTLED, Status
from visgate.kit import iso
from visgate.registry.catalogue import GpuCatalogue

# What a user can do about a failure, by error type; the message says what happened.
NEXT_STEPS: dict[str, str] = {
    "HuggingFaceModelNotFoundError": "Check the model id on huggingface.co (owner/name, exact case), then create a new deployment.",
    "HuggingFaceGatedModelError": "Accept the model's licence on its hub page, then deploy again with an HF token of that account.",
    "HuggingFaceInvalidTokenError": "Create a new read token at huggingface.co/settings/tokens and deploy again with it.",
    "HuggingFaceDisabledModelError": "The hub has disabled this model: pick another one.",
    "HuggingFaceUnsupportedModelError": "Pick a model from the Models page, or a diffusers text-to-image model.",
    "RunpodInsufficientGPUError": "No GPU pool with enough memory has capacity now: try another region or GPU tier, or later.",
    "RunpodAuthError": "The Runpod key was refused: check it on runpod.io (Settings, API keys) and deploy again.",
    "RunpodAPIError": "Runpod refused a call: the message has its answer. Deploy again once it is fixed.",
    "RunpodTemplateNotConfiguredError": "The operator has not set a worker image (RUNPOD_TEMPLATE_IMAGE).",
    "ProviderNotConfiguredError": "This control plane has no GPU provider configured: ask its operator.",
    "ReadyTimeoutError": "The worker never reported ready: open the worker logs below for why, then deploy again.",
    "WorkerFailedError": "The worker reported a failure while loading: the worker logs below say more.",
    "QuotaExceededError": "Delete a deployment you no longer need, or ask for a higher quota.",
}
DEFAULT_NEXT_STEP = "Read the log below for what happened, then create a new deployment."
# The same advice for the deployment page's script, which shows an error that arrives while
# it watches ("" holds the default).
NEXT_STEPS_JSON = json.dumps({**NEXT_STEPS, "": DEFAULT_NEXT_STEP})


@dataclass(frozen=True, slots=True)
class Phase:
    """One status the deployment went through: when, for how long, what it found."""

    seq: int
    status: str
    started_at: str
    seconds: float | None  # None while it is the running phase
    message: str


def timeline(dep: Deployment) -> list[Phase]:
    """Each status change with the time to the next one, as `visgate deploy --wait` shows
    it: measured by the service's clock, so a late or reconnecting viewer sees the same."""
    phases = []
    history = dep.history
    for index, change in enumerate(history):
        nxt = history[index + 1] if index + 1 < len(history) else None
        if nxt is not None:
            seconds: float | None = nxt.at - change.at
        elif change.status in SETTLED or change.status is Status.deleted:
            seconds = 0.0
        else:
            seconds = None
        phases.append(
            Phase(change.seq, change.status.value, iso(change.at) or "", seconds, change.message)
        )
    return phases


def total_seconds(dep: Deployment) -> float | None:
    """First status change to the first settled one; None until it settles."""
    for change in dep.history:
        if change.status in SETTLED:
            return change.at - dep.history[0].at
    return None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def money(value: float | None, *, per_hour: bool = False) -> str:
    if value is None:
        return "—"
    text = f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
    return f"{text}/h" if per_hour else text


def age(since: float, now: float) -> str:
    seconds = max(0.0, now - since)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"


def list_row(dep: Deployment, now: float, catalogue: GpuCatalogue | None) -> dict[str, Any]:
    """A deployment as the list shows it, from its record alone (no provider call per row):
    price and spend are the meter's estimate; the deployment's page reads the live figures."""
    unit = unit_price_per_hour(dep, catalogue)
    workers = dep.meter.workers if dep.meter else 0
    return {
        "id": dep.id,
        "model_id": dep.model_id,
        "status": dep.status.value,
        "gpu": dep.gpu or (", ".join(dep.gpu_pools) if dep.gpu_pools else "—"),
        "region": dep.region or "any",
        "workers": f"{workers} of {dep.max_workers}",
        "price": money(unit * workers if unit is not None else None, per_hour=True),
        "spend": money(dep.meter.spend_at(now) if dep.meter else 0.0),
        "age": age(dep.created_at, now),
        "created_at": iso(dep.created_at),
    }


def next_step(error_type: str | None) -> str:
    return NEXT_STEPS.get(error_type or "", DEFAULT_NEXT_STEP)

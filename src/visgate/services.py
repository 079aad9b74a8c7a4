"""The wired service graph: settings plus one instance of each external system.

Built once per process by `build_services`; tests build it with fakes in place. The API and
the reconciler both take a `Services`, so neither constructs a backend itself. Process-wide
state that is not a backend lives here too (the GPU catalogue, the loops' wake events, the
webhook sender's hand-off), so a second `Services` (a test, a CLI command) never shares it
by accident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from visgate.auth.callback_tokens import CallbackTokens, load_callback_key
from visgate.domain.records import WebhookDelivery
from visgate.providers.base import GpuProvider
from visgate.providers.factory import build_provider
from visgate.registry.catalogue import GpuCatalogue
from visgate.secrets.base import SecretStore
from visgate.secrets.factory import build_secret_store
from visgate.settings import Settings
from visgate.store.factory import build_store
from visgate.store.repositories import Store

if TYPE_CHECKING:
    from visgate.hub import HubValidator

# Takes a new delivery to send at once; False when it cannot (no room): queue it instead.
DeliveryHandoff = Callable[[WebhookDelivery], Awaitable[bool]]


@dataclass(frozen=True)
class Wakes:
    """Events that end a leased loop's idle wait: new work starts now, not at the next poll."""

    reconciler: asyncio.Event = field(default_factory=asyncio.Event)
    deliveries: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Services:
    settings: Settings
    store: Store
    secrets: SecretStore
    provider: GpuProvider | None = None
    hub: HubValidator | None = None
    callback_tokens: CallbackTokens = field(default_factory=lambda: CallbackTokens(b""))
    wakes: Wakes = field(default_factory=Wakes)
    # Pools selection and pricing use; the reconciler overlays the provider's live list.
    catalogue: GpuCatalogue = field(default_factory=GpuCatalogue)
    # Set while a webhook sender runs in this process (the orchestrator registers it), so
    # the paths that queue an event hand it straight over without importing orchestrator/.
    delivery_handoff: DeliveryHandoff | None = None

    def callback_url(self, deployment_id: str) -> str:
        return f"{self.settings.public_base_url}/internal/deployment-ready/{deployment_id}"

    def poke(self) -> None:
        """Wake the in-process reconciler: a record is due now."""
        self.wakes.reconciler.set()

    def poke_deliveries(self) -> None:
        """Wake the in-process webhook sender: a delivery is due now."""
        self.wakes.deliveries.set()

    async def send_delivery_now(self, delivery: WebhookDelivery) -> bool:
        """Hand a new delivery to this process's webhook sender, which writes it leased to
        itself and sends it at once: no claim, no wait behind the loops' other store work.
        False when no sender runs here or it has no room; the caller queues it instead."""
        handoff = self.delivery_handoff
        return handoff is not None and await handoff(delivery)

    async def aclose(self) -> None:
        for closer in (self.provider, self.secrets, self.store):
            if closer is not None:
                await closer.aclose()


_OPERATOR_SECRETS = ("internal_webhook_secret", "runpod_api_key", "secret_key")


def resolve_operator_secrets(settings: Settings) -> Settings:
    """Operator secrets may be given as Secret Manager references (`sm://projects/...`):
    read them once at start-up so nothing later needs to know."""
    # Google's client libraries load only where a deployment uses Secret Manager.
    from visgate.secrets.references import reference_name, resolve_secret_references

    given = {
        name: value.get_secret_value()
        for name in _OPERATOR_SECRETS
        if (value := getattr(settings, name)) is not None
    }
    if not any(reference_name(v) for v in given.values()):
        return settings
    resolved = resolve_secret_references(given)
    return settings.model_copy(
        update={name: SecretStr(v) for name, v in resolved.items() if v is not None}
    )


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Real backends per settings; any of store/secrets/provider/hub may be passed in."""
    settings = resolve_operator_secrets(settings)
    store = overrides.pop("store", None) or build_store(settings)
    secret_store = overrides.pop("secrets", None) or _build_secrets(settings)
    # None: build from settings; False: leave out (e.g. `visgate keys` needs no provider).
    provider = overrides.pop("provider", None)
    provider = build_provider(settings) if provider is None else (provider or None)
    hub = overrides.pop("hub", None)
    hub = _build_hub(settings) if hub is None else (hub or None)
    return Services(
        settings=settings,
        store=store,
        secrets=secret_store,
        provider=provider,
        hub=hub,
        callback_tokens=overrides.pop("callback_tokens", None)
        or CallbackTokens(load_callback_key(settings)),
        **overrides,
    )


def _build_secrets(settings: Settings) -> SecretStore:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return build_secret_store(
        settings.secrets.value,
        data_dir=settings.data_dir,
        local_key=key,
        project_id=settings.gcp_project_id,
    )


def _build_hub(settings: Settings) -> HubValidator:
    # huggingface_hub is slow to import: commands built without a hub (`visgate keys`) skip it.
    from visgate.hub import HubValidator

    return HubValidator(settings.hf_endpoint, offline=settings.hf_hub_offline)

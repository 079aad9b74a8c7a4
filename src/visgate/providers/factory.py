"""Build the configured GPU provider from settings."""

from __future__ import annotations

from visgate.providers.base import GpuProvider
from visgate.settings import ProviderKind, RunpodApi, Settings


def build_provider(settings: Settings) -> GpuProvider:
    # Imported per branch: only the configured provider's client stack (gql for GraphQL,
    # the local worker runner) loads at start-up.
    if settings.provider is ProviderKind.local:
        from visgate.providers.local import LocalProvider

        return LocalProvider(settings)
    if settings.runpod_api is RunpodApi.rest:
        from visgate.providers.runpod import RunpodRestProvider

        return RunpodRestProvider(settings.runpod_rest_url, settings.runpod_api_base)
    from visgate.providers.runpod import RunpodProvider

    return RunpodProvider(settings.runpod_graphql_url, settings.runpod_api_base)

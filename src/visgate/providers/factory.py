"""Build the configured GPU provider from settings."""

from __future__ import annotations

from visgate.providers.base import GpuProvider
from visgate.settings import ProviderKind, Settings


def build_provider(settings: Settings) -> GpuProvider:
    if settings.provider is ProviderKind.local:
        from visgate.providers.local import LocalProvider

        return LocalProvider(settings)
    from visgate.providers.runpod import RunpodProvider

    return RunpodProvider(settings.runpod_graphql_url, settings.runpod_api_base)

"""Which keys a deployment's calls use: its own (from the secret store) or the operator's."""

from __future__ import annotations

from visgate.domain.deployment import Deployment
from visgate.domain.errors import RunpodAuthError
from visgate.services import Services


async def secret(services: Services, dep: Deployment, name: str) -> str | None:
    ref = dep.secret_refs.get(name)
    return await services.secrets.get(ref) if ref else None


async def provider_key(services: Services, dep: Deployment) -> str:
    """The deployment's own Runpod key if it brought one, else the operator's."""
    key = await secret(services, dep, "runpod_api_key")
    if key:
        return key
    if services.settings.runpod_api_key is not None:
        return services.settings.runpod_api_key.get_secret_value()
    if services.settings.provider.value == "local":
        return "local"  # the local provider needs no key
    raise RunpodAuthError("no Runpod API key: pass user_runpod_key or set RUNPOD_API_KEY")

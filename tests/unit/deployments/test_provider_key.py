"""Which key a deployment's provider calls use, and which worker image an endpoint gets when
the operator names none: the provider in use decides, not a branch on its name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from visgate.deployments.service import provider_key
from visgate.domain.deployment import Deployment
from visgate.domain.errors import RunpodAuthError, RunpodTemplateNotConfiguredError
from visgate.orchestrator.steps import endpoint_spec
from visgate.providers.local import LocalProvider
from visgate.providers.runpod.provider import RunpodProvider
from visgate.services import Services
from visgate.settings import load_settings


@pytest.fixture
async def make_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("RUNPOD_TEMPLATE_IMAGE", raising=False)
    built: list[Services] = []

    def make(provider: str, **env: Any) -> Services:
        settings = load_settings(
            VISGATE_DB_PATH=str(tmp_path / "visgate.db"), PROVIDER=provider, **env
        )
        gpu = (
            LocalProvider(settings)
            if provider == "local"
            else RunpodProvider("http://runpod.test/graphql", "http://runpod.test/v2")
        )
        services = Services(settings=settings, store=None, secrets=None, provider=gpu)  # type: ignore[arg-type]
        built.append(services)
        return services

    yield make
    for services in built:
        assert services.provider is not None
        await services.provider.aclose()


def _dep() -> Deployment:
    return Deployment.new(id="dep_0123456789abcdef", tenant="t", model_id="a/b", now=0.0)


async def test_a_local_deployment_needs_no_runpod_key(make_services: Any) -> None:
    services = make_services("local")
    assert await provider_key(services, _dep()) == ""


async def test_a_runpod_deployment_with_no_key_anywhere_is_refused(make_services: Any) -> None:
    services = make_services("runpod")
    with pytest.raises(RunpodAuthError, match="no Runpod API key"):
        await provider_key(services, _dep())


async def test_the_operators_key_serves_deployments_that_bring_none(make_services: Any) -> None:
    for provider in ("runpod", "local"):
        services = make_services(provider, RUNPOD_API_KEY="rk_operator")
        assert await provider_key(services, _dep()) == "rk_operator"


async def test_the_local_provider_runs_the_checkout_worker_unless_an_image_is_set(
    make_services: Any,
) -> None:
    local = make_services("local")
    assert (await endpoint_spec(local, _dep(), [])).image == "inference/"
    named = make_services("local", RUNPOD_TEMPLATE_IMAGE="me/worker:1")
    assert (await endpoint_spec(named, _dep(), [])).image == "me/worker:1"


async def test_runpod_needs_the_operator_to_name_the_worker_image(make_services: Any) -> None:
    with pytest.raises(RunpodTemplateNotConfiguredError):
        await endpoint_spec(make_services("runpod", RUNPOD_API_KEY="rk"), _dep(), [])

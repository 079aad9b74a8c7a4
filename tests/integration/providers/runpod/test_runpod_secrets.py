"""The Runpod API key never shows up in a log line, an exception, or the request URL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from tests.fakes.runpod import RunningFakeRunpod
from tests.integration.providers.runpod.conftest import make_spec
from visgate.domain.errors import VisgateError
from visgate.providers.runpod import RunpodProvider
from visgate.providers.runpod import provider as provider_module
from visgate.providers.runpod import retry as retry_module

SECRET_KEY = "rp_SECRET_d41d8cd98f00b204e9800998ecf8427e"
WRONG_KEY = "rp_WRONG_0cc175b9c0f1b6a831c399e269772661"


@pytest.fixture
def structlog_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    # Fresh loggers: one configured elsewhere with cache_logger_on_first_use would bypass
    # the capture.
    for module in (provider_module, retry_module):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    with capture_logs() as events:
        yield events


async def _everything(provider: RunpodProvider, fake: RunningFakeRunpod) -> list[VisgateError]:
    """Every path that logs or raises: success, retries, refusals, bad key, timeouts."""
    errors: list[VisgateError] = []

    async def attempt(call: Callable[[], Any]) -> None:
        try:
            await call()
        except VisgateError as exc:
            errors.append(exc)

    spec = make_spec(env={"HF_MODEL_ID": "m"})
    fake.state.fail_next(1, 503)
    ref = await provider.ensure_endpoint(spec, api_key=SECRET_KEY)
    await provider.submit_job(ref.endpoint_id, {"input": {"x": 1}}, api_key=SECRET_KEY, sync=True)
    fake.state.fail_next(5, 500)
    await attempt(lambda: provider.list_endpoints(api_key=SECRET_KEY))
    fake.state.fail_next(1, 429, retry_after=300)
    await attempt(lambda: provider.gpu_types(api_key=SECRET_KEY))
    fake.state.worker_quota = 1
    await attempt(lambda: provider.ensure_endpoint(make_spec("two"), api_key=SECRET_KEY))
    await attempt(lambda: provider.ensure_endpoint(spec, api_key=WRONG_KEY))
    await attempt(lambda: provider.endpoint_health(ref.endpoint_id, api_key=WRONG_KEY))
    await attempt(lambda: provider.job_status(ref.endpoint_id, "nope", api_key=SECRET_KEY))
    fake.state.fail_next(5, 502, surface="serverless")
    await attempt(lambda: provider.endpoint_health(ref.endpoint_id, api_key=SECRET_KEY))
    fake.state.latency_s = 0.3
    await attempt(lambda: provider.list_endpoints(api_key=SECRET_KEY))
    fake.state.latency_s = 0.0
    await provider.teardown(spec.name, api_key=SECRET_KEY)
    return errors


async def test_key_never_in_logs_or_errors(
    make_provider: Callable[..., RunpodProvider],
    fake: RunningFakeRunpod,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    structlog_events: list[dict[str, Any]],
) -> None:
    fake.state.api_keys.add(SECRET_KEY)
    caplog.set_level(logging.DEBUG)  # gql, httpx and httpcore at their chattiest
    provider = make_provider(timeout=0.15, retry_attempts=2)

    errors = await _everything(provider, fake)
    await provider.aclose()

    assert len(errors) == 8  # every failure path above did fail
    assert any(e["event"] == "runpod_retry" for e in structlog_events)  # capture works
    assert caplog.records  # the stdlib capture saw the HTTP clients' logs
    out, err = capsys.readouterr()
    texts = [caplog.text, out, err, repr(structlog_events)]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(exc.to_dict()), repr(exc.headers), repr(exc.args)]
        texts += [str(exc.__cause__), str(exc.__context__)]
    for key in (SECRET_KEY, WRONG_KEY):
        for text in texts:
            assert key not in text


async def test_key_goes_only_in_the_authorization_header(
    provider: RunpodProvider, fake: RunningFakeRunpod, api_key: str
) -> None:
    ref = await provider.ensure_endpoint(make_spec(), api_key=api_key)
    await provider.endpoint_health(ref.endpoint_id, api_key=api_key)

    assert {c.surface for c in fake.state.calls} == {"graphql", "serverless"}
    for call in fake.state.calls:
        assert call.authorization == f"Bearer {api_key}"
        # `path` is the URL as sent, query included: no key, and no query at all.
        assert call.path in ("/graphql", f"/v2/{ref.endpoint_id}/health")
        assert api_key not in call.path and "api_key" not in call.path
        assert api_key not in repr(call.variables)


async def test_the_fake_refuses_a_key_in_the_url_and_records_the_query(
    fake: RunningFakeRunpod, api_key: str
) -> None:
    # What makes the test above able to fail: a key in the URL is seen, and refused.
    async with httpx.AsyncClient() as client:
        graphql = await client.post(
            f"{fake.graphql_url}?api_key={api_key}", json={"query": "{ gpuTypes { id } }"}
        )
        health = await client.get(f"{fake.api_base}/abc/health", params={"api_key": api_key})

    assert (graphql.status_code, health.status_code) == (400, 400)
    assert [c.path for c in fake.state.calls] == [
        f"/graphql?api_key={api_key}",
        f"/v2/abc/health?api_key={api_key}",
    ]

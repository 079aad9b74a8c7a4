"""How the REST v2 backend reads answers a well-behaved fake never sends: HTML instead of
JSON, a 201 without an id, `RateLimit` headers without `Retry-After`. Each must end as a
typed error that names the problem, never an exception our API would answer with a 500."""

from __future__ import annotations

import httpx
import pytest
import respx

from visgate.domain.errors import RunpodAPIError, RunpodUnavailableError
from visgate.providers.base import EndpointSpec
from visgate.providers.runpod import RunpodRestProvider
from visgate.providers.runpod.rest_api import RunpodBadAnswerError, rate_limit_wait

REST = "https://rest.example/v2"
KEY = "rp_test_key_0123456789"
SPEC = EndpointSpec(name="visgate-d1", image="img:1", env={"A": "1"}, gpu_pools=["ADA_24"])


def provider() -> RunpodRestProvider:
    return RunpodRestProvider(
        REST, "https://jobs.example/v2", retry_attempts=2, max_retry_wait=0.01
    )


@respx.mock
async def test_a_create_answered_without_an_id_is_a_typed_error_naming_it() -> None:
    respx.post(f"{REST}/templates").respond(201, json={"id": "tpl1", "name": SPEC.name})
    respx.post(f"{REST}/serverless").respond(201, json={"name": SPEC.name})
    with pytest.raises(RunpodBadAnswerError, match="has no id"):
        await provider().ensure_endpoint(SPEC, api_key=KEY, fresh=True)


@respx.mock
async def test_an_html_page_at_http_200_is_a_typed_error_not_a_crash() -> None:
    respx.get(f"{REST}/serverless").respond(
        200, text="<html>maintenance</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(RunpodBadAnswerError, match="no JSON"):
        await provider().list_endpoints(api_key=KEY)


@respx.mock
async def test_a_list_without_its_array_is_a_typed_error() -> None:
    respx.get(f"{REST}/serverless").respond(200, json={"items": []})
    with pytest.raises(RunpodBadAnswerError, match="no endpoints list"):
        await provider().find_endpoint(SPEC.name, api_key=KEY)


@respx.mock
async def test_422_carries_runpods_detail_and_errors_and_never_the_key() -> None:
    respx.get(f"{REST}/templates").respond(200, json={"templates": []})
    respx.post(f"{REST}/templates").respond(
        422,
        json={
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": f"validation failed for key {KEY}",
            "errors": ["$: additional properties 'bogus' not allowed"],
        },
        headers={"content-type": "application/problem+json"},
    )
    with pytest.raises(RunpodAPIError) as caught:
        await provider().ensure_endpoint(SPEC, api_key=KEY)
    assert "validation failed" in caught.value.message
    assert "additional properties 'bogus' not allowed" in caught.value.message
    assert KEY not in caught.value.message
    assert respx.calls.call_count == 2  # a refusal is not retried


@respx.mock
async def test_429_waits_what_ratelimit_says_then_hands_back_with_retry_after() -> None:
    limited = httpx.Response(
        429,
        json={"title": "Too Many Requests", "status": 429, "detail": "rate limit exceeded"},
        headers={"RateLimit": '"minute";r=0;t=40, "hour";r=5;t=900'},
    )
    route = respx.get(f"{REST}/serverless").mock(return_value=limited)
    with pytest.raises(RunpodUnavailableError) as caught:
        await provider().list_endpoints(api_key=KEY)
    # 40 s is longer than the provider may wait (max_retry_wait): handed back at once.
    assert route.call_count == 1
    assert caught.value.headers == {"Retry-After": "40"}


def test_rate_limit_wait_reads_retry_after_first_then_the_exhausted_windows() -> None:
    assert rate_limit_wait(httpx.Headers({"Retry-After": "7", "RateLimit": '"m";r=0;t=40'})) == 7
    both = '"minute";r=0;t=12, "hour";r=0;t=1812, "day";r=49500;t=45012'
    assert rate_limit_wait(httpx.Headers({"RateLimit": both})) == 1812
    assert rate_limit_wait(httpx.Headers({"RateLimit": '"minute";r=3;t=12'})) is None
    assert rate_limit_wait(httpx.Headers({})) is None


@pytest.mark.parametrize(
    "answer",
    [
        {"records": []},  # no metadata
        {"records": {}, "metadata": {"totals": {"totalAmount": 1.0}}},
        {"records": [{}], "metadata": {"totals": {}}},
        {"records": [{}], "metadata": {"totals": {"totalAmount": "1.25"}}},
        {"records": [{}], "metadata": ["totals"]},
    ],
)
@respx.mock
async def test_a_billing_answer_without_records_and_a_total_is_a_typed_error(
    answer: dict,
) -> None:
    respx.get(f"{REST}/billing/serverless").respond(200, json=answer)
    with pytest.raises(RunpodBadAnswerError, match="billing/serverless"):
        await provider().endpoint_spend("e1", api_key=KEY, since=0)


@respx.mock
async def test_billing_without_records_is_no_figure_and_with_some_is_the_total() -> None:
    totals = {"totalAmount": 0, "gpuAmount": 0, "cpuAmount": 0, "diskAmount": 0, "feeAmount": 0}
    route = respx.get(f"{REST}/billing/serverless")
    route.respond(200, json={"records": [], "metadata": {"totals": totals}})
    assert await provider().endpoint_spend("e1", api_key=KEY, since=86_400 * 1.5) is None
    assert dict(route.calls.last.request.url.params) == {
        "serverlessId": "e1",
        "startTime": "1970-01-02T00:00:00Z",
        "bucketSize": "day",
    }
    route.respond(200, json={"records": [{}], "metadata": {"totals": {"totalAmount": 3}}})
    assert await provider().endpoint_spend("e1", api_key=KEY, since=0) == 3.0

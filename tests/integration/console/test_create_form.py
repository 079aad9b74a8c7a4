"""The create form as a user meets it: a refused field shows the API's own message beside it,
the secrets typed in are never written back into the page, a good form leads to the new
deployment's page, and a quota breach says so in the API's words."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from tests.integration.console.conftest import Browser, Console
from visgate.domain.status import Status

MODEL = "stabilityai/sdxl-turbo"
RUNPOD_KEY = "rpa_CONSOLE_SECRET_runpod_0123456789"
HF_TOKEN = "hf_CONSOLE_SECRET_token_0123456789"


def field_error(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="f-{field}-error">(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else None


def problem(page: str) -> str | None:
    found = re.search(r'<div class="error" role="alert">(.*?)</div>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else None


def api_refusal(resp: httpx.Response, field: str) -> tuple[str, str]:
    """The API's 422: the field's message and the error's message."""
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    messages = [f["message"] for f in error["fields"] if f["field"] == field]
    assert messages, error
    return messages[0], error["message"]


# (field, form values, the same as a JSON body, refused by the schema or by the service)
CASES = [
    ("max_workers", {"max_workers": "abc"}, {"max_workers": "abc"}, "schema"),
    ("max_workers", {"max_workers": "0"}, {"max_workers": 0}, "schema"),
    ("max_workers", {"max_workers": "-1"}, {"max_workers": -1}, "schema"),
    (
        "max_workers",
        {"max_workers": "\u00b2"},
        {"max_workers": "\u00b2"},
        "schema",
    ),  # a digit int() refuses
    ("max_workers", {"max_workers": "101"}, {"max_workers": 101}, "schema"),
    ("ttl_seconds", {"ttl_seconds": "5"}, {"ttl_seconds": 5}, "schema"),
    ("hf_model_id", {"hf_model_id": "not a model id"}, {"hf_model_id": "not a model id"}, "schema"),
    ("hf_model_id", {"hf_model_id": "owner/name.git"}, {"hf_model_id": "owner/name.git"}, "schema"),
    ("region", {"region": "mars-1"}, {"region": "mars-1"}, "service"),
    ("gpu_tier", {"gpu_tier": "potato"}, {"gpu_tier": "potato"}, "service"),
    (
        "user_webhook_url",
        {"user_webhook_url": "http://10.0.0.1/hook"},
        {"user_webhook_url": "http://10.0.0.1/hook"},
        "service",
    ),
    (
        "user_webhook_url",
        {"user_webhook_url": "ftp://example.com/hook"},
        {"user_webhook_url": "ftp://example.com/hook"},
        "service",
    ),
]


@pytest.fixture
async def strict(make_console: Any) -> Console:
    """Private webhook targets refused, as in production."""
    return await make_console(WEBHOOK_ALLOW_PRIVATE_URLS=False)


@pytest.mark.parametrize(
    ("field", "form", "body", "where"), CASES, ids=[f"{c[0]}-{c[1][c[0]]}" for c in CASES]
)
async def test_a_refused_field_shows_the_apis_own_message_beside_it(
    strict: Console, field: str, form: dict[str, str], body: dict[str, Any], where: str
) -> None:
    api = strict.api
    alice = await strict.browser("alice")
    from_api = await api.client.post(
        "/v1/deployments", json={"hf_model_id": MODEL, **body}, headers=api.auth()
    )
    field_message, error_message = api_refusal(from_api, field)

    page = await alice.post_form("/console/deployments/new", {"hf_model_id": MODEL, **form})

    assert page.status_code == 422
    # Pydantic's "Value error, " prefix, which the API passes on, is left off beside a field.
    assert field_error(page.text, field) == field_message.removeprefix("Value error, ")
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page.text)
    if where == "service":  # the whole refusal above the form, as the API words it
        assert problem(page.text) == f"ValidationError: {error_message}"
    else:
        assert problem(page.text) == "Some fields need a change: see below."
    # The user's input is kept for the next try (in text inputs and selects alike).
    value = form[field]
    assert f'value="{html.escape(value)}"' in page.text or field in ("region", "gpu_tier")
    assert not (await api.services.store.deployments.list(tenant="alice")).items


@pytest.mark.parametrize(
    "refusal",
    [{"max_workers": "abc"}, {"region": "mars-1"}, {"hf_model_id": "bad id"}],
    ids=["schema", "service", "model"],
)
async def test_secrets_are_never_written_back_into_the_form(
    console: Console, refusal: dict[str, str]
) -> None:
    alice = await console.browser("alice")
    form = {"hf_model_id": MODEL, "user_runpod_key": RUNPOD_KEY, "hf_token": HF_TOKEN, **refusal}

    page = await alice.post_form("/console/deployments/new", form)

    assert page.status_code == 422
    assert RUNPOD_KEY not in page.text and HF_TOKEN not in page.text
    for name in ("user_runpod_key", "hf_token"):
        [tag] = re.findall(rf'<input id="f-{name}"[^>]*>', page.text)
        assert "value=" not in tag and 'type="password"' in tag


async def test_a_good_form_leads_to_the_new_deployments_page(console: Console) -> None:
    api = console.api
    alice = await console.browser("alice")
    form = {
        "hf_model_id": MODEL,
        "region": "EU",
        "max_workers": "2",
        "ttl_seconds": "3600",
        "user_webhook_url": "http://93.184.216.34/hook",
        "user_runpod_key": RUNPOD_KEY,
        "hf_token": HF_TOKEN,
    }

    answer = await alice.post_form("/console/deployments/new", form)

    assert answer.status_code == 303
    location = answer.headers["location"]
    assert re.fullmatch(r"/console/deployments/dep_[0-9a-f]{16}", location)
    dep_id = location.rsplit("/", 1)[-1]
    page = await alice.get(location)
    assert page.status_code == 200
    assert f"<h1>{MODEL}</h1>" in page.text
    assert f'data-id="{dep_id}"' in page.text and 'data-status="validating"' in page.text
    assert "<dt>Max workers</dt><dd>2</dd>" in page.text
    assert "<code>http://93.184.216.34/hook</code>" in page.text
    assert RUNPOD_KEY not in page.text and HF_TOKEN not in page.text
    dep = await api.services.store.deployments.get(dep_id, tenant="alice")
    assert dep.status is Status.validating and dep.model_id == MODEL
    assert (dep.max_workers, dep.ttl_seconds, dep.region) == (2, 3600, "EU")
    assert RUNPOD_KEY not in json.dumps(dep.to_doc()) and HF_TOKEN not in json.dumps(dep.to_doc())
    listed = await alice.get("/console/deployments")
    assert f'href="/console/deployments/{dep_id}"' in listed.text
    # The API sees the same deployment.
    from_api = await api.client.get(f"/v1/deployments/{dep_id}", headers=api.auth())
    assert from_api.json()["webhook_url"] == "http://93.184.216.34/hook"


async def test_a_quota_breach_shows_quota_exceeded_with_its_message(make_console: Any) -> None:
    console: Console = await make_console(TENANT_MAX_DEPLOYMENTS=1)
    api = console.api
    alice: Browser = await console.browser("alice")
    first = await alice.post_form("/console/deployments/new", {"hf_model_id": MODEL})
    assert first.status_code == 303
    from_api = await api.post_deployment("alice")
    assert from_api.status_code == 429
    error = from_api.json()["error"]
    assert error["type"] == "QuotaExceededError"

    page = await alice.post_form(
        "/console/deployments/new", {"hf_model_id": MODEL, "max_workers": "1"}
    )

    assert page.status_code == 429
    assert problem(page.text) == f"QuotaExceededError: {error['message']}"
    assert f'value="{MODEL}"' in page.text  # the form is kept for later
    assert len((await api.services.store.deployments.list(tenant="alice")).items) == 1


async def test_the_form_offers_the_registry_and_starts_from_a_chosen_model(
    console: Console,
) -> None:
    alice = await console.browser("alice")

    page = await alice.get("/console/deployments/new", params={"model": MODEL})

    assert page.status_code == 200
    assert f'name="hf_model_id" value="{MODEL}"' in page.text
    assert f'<option value="{MODEL}">' in page.text  # the registry's models to pick from
    assert f'name="csrf_token" value="{alice.csrf}"' in page.text

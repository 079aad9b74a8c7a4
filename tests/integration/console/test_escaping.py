"""Hostile text on console pages: wherever a user or a worker can put text that a page shows
(the tenant's name, a webhook URL, log lines, errors, webhook delivery errors, re-shown form
values, reflected query parameters), it arrives escaped, never as markup; and every console
answer carries the headers that keep a page from running or framing anything else."""

from __future__ import annotations

import time

import httpx

from tests.integration.console.conftest import Browser, Console, assert_page_headers, sign_in
from visgate.auth.api_keys import issue_key
from visgate.domain.deployment import Deployment, ErrorInfo, TeardownBlocked
from visgate.domain.records import DeliveryAttemptLog, WebhookDelivery
from visgate.webhooks.events import EventType, delivery_id

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
# As Jinja's autoescape writes them.
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESCAPED = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
MODEL = "stabilityai/sdxl-turbo"


def assert_inert(page: httpx.Response, *escaped: str) -> None:
    """No hostile markup in the page, raw; each of `escaped` is there, escaped."""
    text = page.text
    for raw in ("<script>alert", "<img src=x", '"><img', "onerror=alert(1)>"):
        assert raw not in text, f"{raw!r} unescaped in {page.request.url}"
    for expected in escaped:
        assert expected in text, f"{expected!r} missing from {page.request.url}"
    assert_page_headers(page)


async def hostile_deployment(console: Console, browser: Browser) -> str:
    """A deployment of `browser`'s tenant with hostile text everywhere a worker, the provider
    or a webhook receiver could put some: log lines, the error, the timeline, a blocked
    teardown, a delivery's error and its URL."""
    api = console.api
    url = f"http://93.184.216.34/hook?a={SCRIPT}&b={IMG}"
    created = await browser.post_form(
        "/console/deployments/new", {"hf_model_id": MODEL, "user_webhook_url": url}
    )
    assert created.status_code == 303, created.text  # the form takes such a URL
    dep_id = created.headers["location"].rsplit("/", 1)[-1]
    now = time.time()

    def spoil(dep: Deployment) -> None:
        dep.log(now, f"worker said {SCRIPT}", level="warning")
        dep.log(now, f"and then {IMG}")
        dep.fail(now, ErrorInfo(type=f"Weird{IMG}", message=f"exploded: {SCRIPT} {IMG}"))
        dep.teardown_blocked = TeardownBlocked(
            since=now,
            account="user",
            left=[f"endpoint {SCRIPT}"],
            error=ErrorInfo(type="RunpodAPIError", message=f"refused {IMG}"),
        )

    await api.services.store.deployments.mutate(dep_id, spoil)
    await api.services.store.deliveries.add(
        WebhookDelivery(
            id=delivery_id(dep_id, EventType.failed),
            deployment_id=dep_id,
            tenant=browser.name,
            key_id=None,
            event_type=EventType.failed.value,
            url=url,
            body="{}",
            state="pending",
            attempts=[DeliveryAttemptLog(at=now, error=f"connect failed {SCRIPT}{IMG}")],
            created_at=now,
            due_at=now + 60,
        )
    )
    return dep_id


async def test_a_hostile_tenant_name_is_escaped_on_every_page(console: Console) -> None:
    issued = await issue_key(console.api.services, f"{SCRIPT}{IMG}")
    browser = await console.browser(issued.tenant, api_key=issued.api_key)
    dep_id = await hostile_deployment(console, browser)

    for path in (
        "/console/deployments",
        "/console/deployments/new",
        "/console/models",
        "/console/gpus",
        f"/console/deployments/{dep_id}",
        f"/console/deployments/{dep_id}/delete",
        f"/console/deployments/{dep_id}/playground",
    ):
        page = await browser.get(path)
        assert page.status_code == 200, path
        assert_inert(page, f'title="Signed in as">{SCRIPT_ESCAPED}{IMG_ESCAPED}<')
    # Error pages are drawn without the signed-in header; still inert.
    missing = await browser.get("/console/deployments/dep_0000000000000000")
    assert missing.status_code == 404
    assert_inert(missing)


async def test_worker_and_receiver_text_on_a_deployments_page_is_escaped(
    console: Console,
) -> None:
    alice = await console.browser("alice")
    dep_id = await hostile_deployment(console, alice)

    page = await alice.get(f"/console/deployments/{dep_id}")

    assert page.status_code == 200
    assert_inert(
        page,
        f"worker said {SCRIPT_ESCAPED}",  # a log line
        f"and then {IMG_ESCAPED}",
        f"Weird{IMG_ESCAPED}",  # the error's type
        f"exploded: {SCRIPT_ESCAPED} {IMG_ESCAPED}",  # its message (and the timeline's)
        f"endpoint {SCRIPT_ESCAPED}",  # a blocked teardown
        f"refused {IMG_ESCAPED}",
        f"connect failed {SCRIPT_ESCAPED}{IMG_ESCAPED}",  # a delivery's error
        f"/hook?a={SCRIPT_ESCAPED}&amp;b={IMG_ESCAPED}",  # the webhook URL
    )
    # The list and the other pages of the deployment stay inert too.
    for path in ("/console/deployments", f"/console/deployments/{dep_id}/delete"):
        assert_inert(await alice.get(path))


async def test_re_shown_form_values_and_refusals_are_escaped(console: Console) -> None:
    alice = await console.browser("alice")
    secret = "rp_secret_value"
    hostile_form = {
        "hf_model_id": SCRIPT,
        "max_workers": IMG,
        "ttl_seconds": SCRIPT,
        "user_webhook_url": f"http://a.example/{IMG}",
        "region": IMG[:16],
        "gpu_tier": SCRIPT,
        "user_runpod_key": secret,
    }

    refused = await alice.post_form("/console/deployments/new", hostile_form)

    assert refused.status_code == 422
    assert_inert(
        refused,
        f'value="{SCRIPT_ESCAPED}"',  # hf_model_id and ttl_seconds re-shown
        f'value="{IMG_ESCAPED}"',  # max_workers
        f'value="http://a.example/{IMG_ESCAPED}"',
    )
    assert secret not in refused.text

    # Refusals the service words with the input in them (an unknown GPU tier, a webhook
    # host name) are escaped as well.
    for form in (
        {"hf_model_id": MODEL, "gpu_tier": SCRIPT},
        {"hf_model_id": MODEL, "gpu_tier": IMG},
        {"hf_model_id": MODEL, "user_webhook_url": f"http://{SCRIPT}/"},
    ):
        answer = await alice.post_form("/console/deployments/new", form)
        assert answer.status_code == 422
        assert "ValidationError" in answer.text
        assert_inert(answer)
    tier = await alice.post_form(
        "/console/deployments/new", {"hf_model_id": MODEL, "gpu_tier": IMG}
    )
    assert f"unknown gpu_tier &#39;{IMG_ESCAPED}&#39;" in tier.text
    assert not (await console.api.services.store.deployments.list(tenant="alice")).items


async def test_reflected_query_parameters_and_paths_are_escaped(console: Console) -> None:
    alice = await console.browser("alice")

    new = await alice.get("/console/deployments/new", params={"model": SCRIPT})
    assert new.status_code == 200
    assert_inert(new, f'value="{SCRIPT_ESCAPED}"')

    missing = await alice.get(f"/console/deployments/{IMG}")
    assert missing.status_code == 404
    assert_inert(missing, f"deployment {IMG_ESCAPED} not found")

    filtered = await alice.get("/console/deployments", params={"status": SCRIPT})
    assert filtered.status_code == 200
    assert_inert(filtered)

    # `next` is a console path, so it is kept, and written into the form escaped; once
    # signed in, the redirect's Location carries it percent-encoded.
    next_path = f"/console/{IMG}"
    form = await console.client().get("/console/sign-in", params={"next": next_path})
    assert_inert(form, f'name="next" value="/console/{IMG_ESCAPED}"')
    landing = await alice.client.post(
        "/console/sign-in",
        data={"sign_in_token": "x", "api_key": "vg_x", "next": next_path},
    )
    assert landing.status_code == 403
    assert_inert(landing, f'name="next" value="/console/{IMG_ESCAPED}"')
    signed = await sign_in(console.client(), console.api.keys["bob"].api_key, next_path=next_path)
    assert signed.status_code == 303
    location = signed.headers["location"]
    assert location.startswith("/console/") and not set("<>\"' ") & set(location)


async def test_every_console_answer_carries_the_security_headers(console: Console) -> None:
    """CSP without inline script, no framing, no sniffing, no caching: on pages, error
    pages, refusals and the redirects the console makes."""
    api = console.api
    alice = await console.browser("alice")
    dep_id = (await api.post_deployment("alice")).json()["deployment_id"]
    anonymous = console.client()
    answers = [
        await anonymous.get("/console/sign-in"),
        await anonymous.get("/console/deployments"),  # 303 to sign-in
        await anonymous.post("/console/sign-in", data={"api_key": "x"}),  # 403
        await anonymous.post("/console/sign-out", data={}),  # 403: no token
        await alice.get("/console/deployments"),
        await alice.get("/console/deployments", params={"status": "failed"}),
        await alice.get("/console/deployments/new"),
        await alice.post_form("/console/deployments/new", {"hf_model_id": "bad id"}),  # 422
        await alice.post_form("/console/deployments/new", {"hf_model_id": MODEL}),  # 303
        await alice.post_form("/console/deployments/new", {"hf_model_id": MODEL}, csrf=None),
        await alice.get(f"/console/deployments/{dep_id}"),
        await alice.get(f"/console/deployments/{dep_id}/delete"),
        await alice.get(f"/console/deployments/{dep_id}/playground"),
        await alice.get("/console/deployments/dep_0000000000000000"),  # 404
        await alice.get("/console/deployments/a..b"),  # 404, no store read
        await alice.get("/console/models"),
        await alice.get("/console/gpus"),
        await alice.post_form(f"/console/deployments/{dep_id}/delete"),  # 303
        await alice.post_form("/console/sign-out"),  # 303
    ]
    assert {a.status_code for a in answers} == {200, 303, 403, 404, 422}
    for answer in answers:
        assert_page_headers(answer)
        if answer.status_code != 303:
            assert answer.headers["content-type"].startswith("text/html")

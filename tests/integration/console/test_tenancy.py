"""One tenant's console never shows or touches another's deployments: another tenant's
deployment answers exactly what a deployment that does not exist answers, on every page and
on `/v1` with the session cookie. The list shows one's own deployments, filters by status and
pages with its cursor."""

from __future__ import annotations

import html
import re
import time

import pytest

from tests.integration.console.conftest import Browser, Console
from visgate.domain.deployment import Deployment, ErrorInfo
from visgate.domain.records import WebhookDelivery
from visgate.domain.status import Status
from visgate.webhooks.events import EventType, delivery_id

MISSING = "dep_0000000000000000"
ROW_LINK = re.compile(r'<a href="/console/deployments/(dep_[0-9a-f]{16})">')
NEXT_LINK = re.compile(r'<a href="([^"]*)">Next page</a>')


def listed(page_text: str) -> list[str]:
    return ROW_LINK.findall(page_text)


async def deploy(console: Console, tenant: str, **body: str) -> str:
    resp = await console.api.post_deployment(tenant, **body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["deployment_id"])


async def alices_deployment_with_a_delivery(console: Console) -> str:
    dep_id = await deploy(console, "alice", user_webhook_url="http://127.0.0.1:9/alice-hook")
    now = time.time()
    await console.api.services.store.deliveries.add(
        WebhookDelivery(
            id=delivery_id(dep_id, EventType.ready),
            deployment_id=dep_id,
            tenant="alice",
            key_id=None,
            event_type=EventType.ready.value,
            url="http://127.0.0.1:9/alice-hook",
            body="{}",
            created_at=now,
            due_at=now,
        )
    )
    return dep_id


@pytest.mark.parametrize("suffix", ["", "/delete", "/playground"])
async def test_another_tenants_deployment_page_is_the_missing_one(
    console: Console, suffix: str
) -> None:
    dep_id = await alices_deployment_with_a_delivery(console)
    bob = await console.browser("bob")

    theirs = await bob.get(f"/console/deployments/{dep_id}{suffix}")
    none = await bob.get(f"/console/deployments/{MISSING}{suffix}")

    assert theirs.status_code == none.status_code == 404
    assert "location" not in theirs.headers
    assert "DeploymentNotFoundError" in theirs.text
    assert theirs.text.replace(dep_id, "ID") == none.text.replace(MISSING, "ID")
    assert "alice-hook" not in theirs.text
    # Still signed in: the page keeps bob's navigation and sign-out.
    assert "Sign out" in theirs.text and ">bob<" in theirs.text


async def test_another_tenant_cannot_delete_through_the_console(console: Console) -> None:
    dep_id = await deploy(console, "alice")
    bob = await console.browser("bob")

    theirs = await bob.post_form(f"/console/deployments/{dep_id}/delete")
    none = await bob.post_form(f"/console/deployments/{MISSING}/delete")

    assert theirs.status_code == none.status_code == 404
    assert theirs.text.replace(dep_id, "ID") == none.text.replace(MISSING, "ID")
    assert (await console.api.services.store.deployments.get(dep_id)).status is Status.validating


async def test_another_tenants_deployment_is_missing_on_v1_with_a_session_cookie(
    console: Console,
) -> None:
    dep_id = await alices_deployment_with_a_delivery(console)
    bob = await console.browser("bob")
    csrf = {"X-CSRF-Token": bob.csrf}

    for method, suffix, headers in (
        ("GET", "", {}),
        ("GET", "/deliveries", {}),
        ("GET", "/cost", {}),
        ("DELETE", "", csrf),
    ):
        theirs = await bob.client.request(
            method, f"/v1/deployments/{dep_id}{suffix}", headers=headers
        )
        none = await bob.client.request(
            method, f"/v1/deployments/{MISSING}{suffix}", headers=headers
        )
        assert theirs.status_code == none.status_code == 404, (method, suffix)
        mine, missing = theirs.json()["error"], none.json()["error"]
        assert mine["type"] == missing["type"] == "DeploymentNotFoundError"
        assert mine["message"].replace(dep_id, "ID") == missing["message"].replace(MISSING, "ID")
        assert "alice-hook" not in theirs.text
    assert (await console.api.services.store.deployments.get(dep_id)).status is Status.validating
    # Alice herself sees it, and its delivery.
    alice = await console.browser("alice")
    mine = await alice.client.get(f"/v1/deployments/{dep_id}/deliveries")
    assert [d["url"] for d in mine.json()["items"]] == ["http://127.0.0.1:9/alice-hook"]


async def test_the_list_shows_only_ones_own_deployments(console: Console) -> None:
    alices = {await deploy(console, "alice") for _ in range(2)}
    bobs = {await deploy(console, "bob")}
    alice, bob = await console.browser("alice"), await console.browser("bob")

    assert set(listed((await alice.get("/console/deployments")).text)) == alices
    assert set(listed((await bob.get("/console/deployments")).text)) == bobs


async def test_the_status_filter_shows_only_that_status(console: Console) -> None:
    store = console.api.services.store.deployments
    waiting = await deploy(console, "alice")
    failed = await deploy(console, "alice")
    deleting = await deploy(console, "alice")
    bobs_failed = await deploy(console, "bob")
    now = time.time()

    def fail(dep: Deployment) -> None:
        dep.fail(now, ErrorInfo(type="WorkerFailedError", message="out of memory"))

    for dep_id in (failed, bobs_failed):
        await store.mutate(dep_id, fail)
    assert (
        await console.api.client.delete(f"/v1/deployments/{deleting}", headers=console.api.auth())
    ).status_code == 204
    alice = await console.browser("alice")

    async def shown(status: str) -> set[str]:
        page = await alice.get("/console/deployments", params={"status": status})
        assert page.status_code == 200
        return set(listed(page.text))

    assert await shown("failed") == {failed}
    assert await shown("validating") == {waiting}
    assert await shown("deleting") == {deleting}
    assert await shown("ready") == set()
    assert await shown("") == {waiting, failed, deleting}
    assert await shown("no-such-status") == {waiting, failed, deleting}
    page = await alice.get("/console/deployments", params={"status": "failed"})
    assert '<option value="failed" selected>' in page.text
    empty = await alice.get("/console/deployments", params={"status": "ready"})
    assert "No deployments in status ready" in empty.text


async def follow_pages(browser: Browser, first: str) -> list[list[str]]:
    """Each page's deployment ids, following "Next page" to the end."""
    pages: list[list[str]] = []
    url: str | None = first
    while url is not None:
        page = await browser.get(url)
        assert page.status_code == 200
        pages.append(listed(page.text))
        if len(pages) > 1:
            assert ">First page</a>" in page.text
        found = NEXT_LINK.search(page.text)
        url = html.unescape(found.group(1)) if found else None
        assert len(pages) < 10
    return pages


async def test_the_list_pages_with_its_cursor(console: Console) -> None:
    store = console.api.services.store.deployments
    now = time.time()
    # Straight into the store: 23 waiting and 2 failed deployments of alice, one of bob's.
    for i in range(25):
        dep = Deployment.new(tenant="alice", model_id="stabilityai/sdxl-turbo", now=now + i)
        if i >= 23:
            dep.fail(now + i, ErrorInfo(type="WorkerFailedError", message="boom"))
        await store.create(dep)
    await store.create(Deployment.new(tenant="bob", model_id="org/model", now=now + 30))
    newest_first = [d.id for d in (await store.list(tenant="alice", limit=100)).items]
    waiting = [
        d.id for d in (await store.list(tenant="alice", status=Status.validating, limit=100)).items
    ]
    alice = await console.browser("alice")

    everything = await follow_pages(alice, "/console/deployments")
    assert [len(p) for p in everything] == [20, 5]
    assert [i for page in everything for i in page] == newest_first

    only_waiting = await follow_pages(alice, "/console/deployments?status=validating")
    assert [len(p) for p in only_waiting] == [20, 3]
    assert [i for page in only_waiting for i in page] == waiting

    # A made-up cursor is refused with a page, not a crash, and shows no one's data.
    forged = await alice.get("/console/deployments", params={"cursor": "not-a-cursor"})
    assert forged.status_code == 422
    assert (
        "ValidationError" in forged.text and "cursor is not one this service issued" in forged.text
    )
    assert not listed(forged.text)

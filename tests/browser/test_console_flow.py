"""The console end to end in Debian's chromium, against `visgate serve` with the local GPU
provider (the worker is a local process running the tiny demo pipeline on the CPU): sign in,
create `lumen/3d-pipeline`, watch the timeline reach `ready` without a reload, read the worker
log and the webhook deliveries, run a playground job whose model the viewer draws, download
the GLB, delete, and watch it reach `deleted`. Every page is saved as a screenshot."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.support.firestore_emulator import free_port
from tests.support.local_serve import stop_local_workers, wait_healthy
from tests.support.receivers import WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.slow
READY_TIMEOUT_MS = 120_000  # the worker imports torch and builds its demo models first
JOB_TIMEOUT_MS = 120_000


@dataclass
class Console:
    url: str
    api_key: str
    receiver: WebhookReceiver
    log: Path


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with webhook_receiver(fail_first=1) as receiver:
        env = {
            **os.environ,
            "VISGATE_DB_PATH": str(tmp / "visgate.db"),
            "PROVIDER": "local",
            "HF_HUB_OFFLINE": "1",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "VISGATE_TRUSTED_PROXY_HOPS": "0",
            "PUBLIC_BASE_URL": url,
            "WEBHOOK_RETRY_SCHEDULE": "1,1,1",
        }
        env.pop("STORE", None)
        made = subprocess.run(
            [sys.executable, "-m", "visgate", "keys", "create", "--name", "studio", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        log = tmp / "serve.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "visgate", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            start_new_session=True,
        )
        try:
            wait_healthy(url, proc)
            yield Console(url, json.loads(made.stdout)["api_key"], receiver, log)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
            stop_local_workers(tmp / "local-endpoints.json")


def shoot(page: Page, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def sign_in(page: Page, console: Console) -> None:
    page.goto(console.url + "/")
    expect(page).to_have_url(f"{console.url}/console/sign-in?next=/console/deployments")
    page.get_by_label("API key").fill(console.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{console.url}/console/deployments")


def drawn_colours(page: Page) -> int:
    """How many distinct colours the viewer's canvas shows (one: blank)."""
    png = page.locator("#viewer-canvas").screenshot()
    image = Image.open(io.BytesIO(png)).convert("RGB").resize((64, 48))
    return len(set(image.tobytes()[i : i + 3] for i in range(0, 64 * 48 * 3, 3)))


def assert_fits(page: Page) -> None:
    """Nothing wider than the screen: a wide table scrolls inside its own box."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the screen"


def assert_key_not_in_browser(page: Page, console: Console) -> None:
    """The API key is in no page, URL, script-readable cookie or browser storage."""
    assert console.api_key not in page.content()
    assert console.api_key not in page.url
    held = page.evaluate(
        "() => [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)]"
    )
    assert all(console.api_key not in value for value in held)
    assert "visgate_session" not in held[0]  # HttpOnly: scripts cannot read the session


def test_sign_in_deploy_watch_play_and_delete(
    page: Page, console: Console, artefacts: Path
) -> None:
    shoot_page = lambda name: shoot(page, artefacts, name)  # noqa: E731
    page.goto(console.url + "/")
    shoot_page("01-sign-in")
    sign_in(page, console)
    shoot_page("02-deployments-empty")

    page.get_by_role("link", name="New deployment").first.click()
    page.get_by_label("Model").fill("lumen/3d-pipeline")
    page.get_by_label("Webhook URL").fill(console.receiver.url)
    shoot_page("03-new-deployment")
    page.get_by_role("button", name="Create deployment").click()
    expect(page).to_have_url(re.compile(r"/console/deployments/dep_[0-9a-f]{16}$"))
    deployment_url = page.url
    # A marker a reload would wipe: the page must reach `ready` from the event stream.
    page.evaluate("() => { window.__sameDocument = true }")
    expect(page.locator("#dep-status")).to_have_text("ready", timeout=READY_TIMEOUT_MS)
    assert page.evaluate("() => window.__sameDocument === true")
    phases = page.locator("#timeline tbody tr")
    statuses = [row.get_attribute("data-status") for row in phases.all()]
    assert statuses[0] == "validating" and statuses[-1] == "ready", statuses
    assert {"selecting_gpu", "creating_endpoint", "loading_model"} <= set(statuses)
    for row in phases.all()[:-1]:  # each finished phase shows its measured time
        assert row.locator(".dur").inner_text().endswith(("ms", " s")), row.inner_text()
    expect(page.locator("#timeline-total")).not_to_have_text("…")
    expect(page.locator("#endpoint-id")).to_contain_text("local-")
    expect(page.locator("#playground-link")).to_be_visible()
    expect(page.locator("#cost-price")).to_contain_text("/h")

    # The ready webhook: refused once (500), then delivered; the table shows both answers.
    expect(page.locator("#deliveries")).to_contain_text("delivered", timeout=30_000)
    expect(page.locator("#deliveries")).to_contain_text("500, 204")

    page.get_by_role("button", name="Show worker log").click()
    expect(page.locator("#worker-logs")).to_contain_text("worker_starting")
    assert_key_not_in_browser(page, console)
    shoot_page("04-deployment-ready")

    page.get_by_role("link", name="Playground").click()
    page.get_by_label("What to make").fill("a small red fox")
    page.get_by_label("Quality").select_option("fast")
    shoot_page("05-playground")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#job-model")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-image img")).to_be_visible()
    assert page.locator("#job-image img").evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#job-timings")).to_contain_text("total")
    deadline = time.monotonic() + 15
    while drawn_colours(page) < 8 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert drawn_colours(page) >= 8, "the viewer's canvas is blank"
    with page.expect_download() as download:
        page.get_by_role("link", name="Download GLB").click()
    glb = Path(download.value.path()).read_bytes()
    assert glb[:4] == b"glTF" and len(glb) > 100
    shoot_page("06-playground-result")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot_page("06-playground-result-390")
    assert_fits(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    for name, heading in (("models", "Models"), ("gpus", "GPUs")):
        page.get_by_role("link", name=heading, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        shoot_page(f"07-{name}")

    page.goto(deployment_url)
    page.get_by_role("link", name="Delete…").click()
    shoot_page("08-delete-confirm")
    page.get_by_role("button", name="Delete deployment").click()
    expect(page).to_have_url(deployment_url)
    page.evaluate("() => { window.__sameDocument = true }")
    expect(page.locator("#dep-status")).to_have_text("deleted", timeout=60_000)
    assert page.evaluate("() => window.__sameDocument === true")
    expect(page.locator("#timeline tbody tr").last).to_have_attribute("data-status", "deleted")
    expect(page.locator("#control-logs")).to_contain_text("delete requested")
    expect(page.locator("#deliveries")).to_contain_text("deployment.deleted", timeout=30_000)
    shoot_page("09-deleted")

    page.goto(console.url + "/console/deployments")
    expect(page.locator("table.deployments")).to_contain_text("deleted")
    shoot_page("10-deployments")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot_page("11-deployments-390")
    page.goto(deployment_url)
    shoot_page("12-deployment-390")
    assert_fits(page)
    for name in ("new", "models", "gpus"):
        page.goto(f"{console.url}/console/{'deployments/new' if name == 'new' else name}")
        shoot_page(f"12-{name}-390")
        assert_fits(page)


def test_a_failure_shows_live_with_what_to_do_next(
    page: Page, console: Console, artefacts: Path
) -> None:
    """Offline, a model outside the registry fails at validation: the page that was opened
    while it was still `validating` shows the error, its type and the next step, unreloaded."""
    sign_in(page, console)
    page.goto(console.url + "/console/deployments/new")
    page.get_by_label("Model").fill("no-such-owner/no-such-model")
    page.get_by_role("button", name="Create deployment").click()
    expect(page).to_have_url(re.compile(r"/console/deployments/dep_[0-9a-f]{16}$"))
    page.evaluate("() => { window.__sameDocument = true }")
    expect(page.locator("#dep-status")).to_have_text("failed")
    expect(page.locator("#dep-error")).to_be_visible()
    expect(page.locator("#dep-error-type")).to_have_text("HuggingFaceUnsupportedModelError")
    expect(page.locator("#dep-error-message")).to_contain_text("HF_HUB_OFFLINE=1")
    expect(page.locator("#dep-error-next")).to_contain_text("Models page")
    expect(page.locator("#playground-link")).to_be_hidden()
    expect(page.locator("#control-logs")).to_contain_text("failed: HuggingFace")
    assert page.evaluate("() => window.__sameDocument === true")
    shoot(page, artefacts, "13-failed")

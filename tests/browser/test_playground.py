"""playground.js in chromium against a fake of the control plane's job routes: a job is
submitted with the session cookie and the CSRF token (never an API key), polled through its
states, and its image, model, download and timings shown; errors land beside their fields."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    CSRF_TOKEN,
    DEPLOYMENT,
    PICTURE_JS,
    Site,
    small_png,
    two_part_glb,
)

JOBS = f"/v1/deployments/{DEPLOYMENT}/jobs"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parts_output(**overrides: Any) -> dict[str, Any]:
    """A 3D job's output as the worker shapes it (points left out: the page does not use them)."""
    names = ("seat", "backrest", "legs")
    return {
        "concept": "furniture",
        "path": "primary",
        "fallback_reason": None,
        "parts": [
            {"name": n, "face_count": 100 + i, "vertex_count": 60} for i, n in enumerate(names)
        ],
        "glb": b64(two_part_glb()),
        "image": b64(small_png()),
        "image_format": "png",
        "timings_ms": {"image": 412, "parts": 9400, "total": 10234},
        "cached": False,
        **overrides,
    }


def open_playground(page: Page, site: Site, kind: str = "3d") -> None:
    page.goto(f"{site.url}/playground/{kind}")
    expect(page.locator("#pg-run")).to_be_enabled()


def status_is(page: Page, status: str) -> None:
    expect(page.locator("#job-status")).to_have_text(re.compile(rf"^{status} · \d+ s$"))


def test_3d_job_is_polled_to_completion_and_its_results_shown(
    page: Page, site: Site, artefacts: Path
) -> None:
    page.context.add_cookies([{"name": "visgate_session", "value": "s-1", "url": site.url}])
    open_playground(page, site)
    page.fill("#pg-text", "a wooden chair")
    page.select_option("#pg-quality", "fast")
    page.fill("#pg-num_parts", "3")
    page.fill("#pg-seed", "7")
    page.click("#pg-run")
    status_is(page, "IN_QUEUE")
    expect(page.locator("#pg-run")).to_be_disabled()
    site.jobs.set("IN_PROGRESS")
    status_is(page, "IN_PROGRESS")
    site.jobs.set("COMPLETED", output=parts_output(), delayTime=2345, executionTime=10500)
    status_is(page, "COMPLETED")
    expect(page.locator("#pg-run")).to_be_enabled()
    expect(page.locator("#job-error")).to_be_hidden()

    expect(page.locator("#job-image")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#job-image img').naturalWidth === 64")
    expect(page.locator("#job-model")).to_be_visible()
    page.wait_for_function(
        f"() => ({PICTURE_JS})(document.querySelector('#viewer-canvas')).drawn > 1000",
        polling=100,
    )
    expect(page.locator("#job-model-summary")).to_have_text(
        "furniture · 3 parts: seat, backrest, legs · 332 triangles"
    )
    expect(page.locator("#job-timings dt")).to_have_text(
        ["image", "parts", "total", "Runpod queue", "Runpod execution"]
    )
    expect(page.locator("#job-timings dd")).to_have_text(
        ["412 ms", "9,400 ms", "10,234 ms", "2,345 ms", "10,500 ms"]
    )
    page.screenshot(path=artefacts / "playground-completed.png", full_page=True)

    with page.expect_download() as download:
        page.click("#glb-download")
    assert download.value.suggested_filename == "model.glb"
    assert Path(download.value.path()).read_bytes() == two_part_glb()

    (post,) = site.jobs.posts()
    assert post.path == JOBS
    assert post.body == {
        "input": {
            "text": "a wooden chair",
            "quality": "fast",
            "num_parts": 3,
            "seed": 7,
            "return_glb": True,
            "return_image": True,
        }
    }
    assert post.headers["x-csrf-token"] == CSRF_TOKEN
    assert post.headers["content-type"].startswith("application/json")
    assert "authorization" not in post.headers
    assert "visgate_session=s-1" in post.headers["cookie"]  # the session authenticates
    polls = [r for r in site.jobs.requests if r.method == "GET"]
    # IN_QUEUE came with the submit answer; at least one poll saw IN_PROGRESS, one COMPLETED
    assert len(polls) >= 2 and {r.path for r in polls} == {f"{JOBS}/job-1"}


@pytest.mark.allow_browser_errors("status of 422")
def test_422_puts_each_message_beside_its_field(page: Page, site: Site, artefacts: Path) -> None:
    hostile = '<img src="x" id="injected">'
    site.jobs.submit = (
        422,
        {
            "error": {
                "type": "ValidationError",
                "message": f"invalid request: input.num_parts: too many {hostile}",
                "request_id": "req_42",
                "fields": [
                    {
                        "field": "input.num_parts",
                        "message": "Input should be less than or equal to 16",
                    },
                    {"field": "body.input.text", "message": f"Not like this {hostile}"},
                ],
            }
        },
    )
    open_playground(page, site)
    page.fill("#pg-text", "a cat")
    page.fill("#pg-num_parts", "17")
    page.click("#pg-run")
    error = page.locator("#job-error")
    expect(error).to_have_text(
        f"ValidationError: invalid request: input.num_parts: too many {hostile}"
    )
    expect(error).to_have_attribute("data-request-id", "req_42")
    expect(page.locator("#pg-num_parts-error")).to_have_text(
        "Input should be less than or equal to 16"
    )
    expect(page.locator("#pg-text-error")).to_have_text(f"Not like this {hostile}")
    expect(page.locator("#injected")).to_have_count(0)  # shown as text, never parsed as HTML
    expect(page.locator("#pg-num_parts")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#pg-text")).to_be_focused()  # the first field in the form's order
    expect(page.locator("#pg-seed-error")).to_be_hidden()
    expect(page.locator("#pg-run")).to_be_enabled()
    assert [r.method for r in site.jobs.requests] == ["POST"]
    page.screenshot(path=artefacts / "playground-422.png", full_page=True)

    # the next run starts clean
    site.jobs.submit = (200, {"id": "job-1", "status": "IN_QUEUE"})
    site.jobs.set("COMPLETED", output=parts_output())
    page.fill("#pg-num_parts", "3")
    page.click("#pg-run")
    status_is(page, "COMPLETED")
    expect(error).to_be_hidden()
    expect(page.locator("#pg-text-error")).to_be_hidden()
    expect(page.locator("#pg-text")).not_to_have_attribute("aria-invalid", "true")


def test_failed_job_shows_the_workers_error(page: Page, site: Site, artefacts: Path) -> None:
    detail = {
        "type": "ValidationError",
        "message": "invalid input: seed: Input should be less than or equal to 4294967295",
        "fields": [
            {"field": "seed", "message": "Input should be less than or equal to 4294967295"}
        ],
    }
    site.jobs.set("FAILED", error=json.dumps(detail))  # a JSON string, as the worker sends it
    open_playground(page, site)
    page.fill("#pg-text", "a cat")
    page.fill("#pg-seed", "4294967296")
    page.click("#pg-run")
    status_is(page, "FAILED")
    expect(page.locator("#job-error")).to_have_text(f"ValidationError: {detail['message']}")
    expect(page.locator("#pg-seed-error")).to_have_text(detail["fields"][0]["message"])
    page.screenshot(path=artefacts / "playground-failed.png", full_page=True)

    site.jobs.set("FAILED", error="CUDA out of memory")  # not JSON: shown as it is
    page.fill("#pg-seed", "1")
    page.click("#pg-run")
    expect(page.locator("#job-error")).to_have_text("JobFailed: CUDA out of memory")
    expect(page.locator("#pg-seed-error")).to_be_hidden()

    site.jobs.set("TIMED_OUT")
    page.click("#pg-run")
    expect(page.locator("#job-error")).to_have_text("TIMED_OUT: the job ran past its time limit")


def test_image_job_shows_the_image_and_no_model(page: Page, site: Site, artefacts: Path) -> None:
    output = {"image": b64(small_png()), "format": "png", "width": 64, "height": 64, "timings_ms": {"total": 812}}  # fmt: skip
    site.jobs.set("COMPLETED", output=output)
    open_playground(page, site, kind="image")
    page.fill("#pg-prompt", "a lighthouse at dusk")
    page.fill("#pg-seed", "3")
    page.click("#pg-run")
    status_is(page, "COMPLETED")
    page.wait_for_function("() => document.querySelector('#job-image img').naturalWidth === 64")
    expect(page.locator("#job-model")).to_be_hidden()
    expect(page.locator("#job-timings dd")).to_have_text(["812 ms"])
    assert site.jobs.posts()[0].body == {"input": {"prompt": "a lighthouse at dusk", "seed": 3}}
    page.screenshot(path=artefacts / "playground-image.png", full_page=True)


def test_missing_text_or_a_fractional_number_is_caught_before_sending(
    page: Page, site: Site
) -> None:
    open_playground(page, site)
    page.fill("#pg-seed", "1.5")
    page.click("#pg-run")
    expect(page.locator("#pg-text-error")).to_have_text("This field is required.")
    expect(page.locator("#pg-seed-error")).to_have_text("Enter a whole number.")
    expect(page.locator("#pg-text")).to_be_focused()
    assert site.jobs.requests == []


@pytest.mark.allow_browser_errors("status of 503")
def test_a_passing_outage_is_ridden_out_and_a_bad_glb_can_still_be_downloaded(
    page: Page, site: Site
) -> None:
    outage = (503, {"error": {"type": "ProviderUnavailable", "message": "try again"}})
    site.jobs.queued = [outage, outage]  # the first two polls, before `current`
    site.jobs.set("COMPLETED", output=parts_output(glb=b64(b"not a model")))
    open_playground(page, site)
    page.fill("#pg-text", "a cat")
    page.click("#pg-run")
    status_is(page, "COMPLETED")
    assert [r.method for r in site.jobs.requests] == ["POST", "GET", "GET", "GET"]
    expect(page.locator("#job-error")).to_have_text(
        "GlbError: Not a GLB file: it is only 11 bytes long"
    )
    expect(page.locator("#job-model-summary")).to_contain_text("can still be downloaded")
    expect(page.locator("#job-image")).to_be_visible()
    with page.expect_download() as download:
        page.click("#glb-download")
    assert Path(download.value.path()).read_bytes() == b"not a model"
